"""A Netflix lakehouse as a Dagster asset graph: bronze -> silver -> gold Delta tables.

`defs` is exposed here so that `dagster ... -m netflix_assets` works as the
data contract promises; building it starts no JVM.

It is imported on first access (PEP 562), not with the package: Spark's Python workers
import `netflix_assets.transforms.*` to run the bronze parser and hasher, and importing
dagster and every definition there cost each worker ~1 s before its first row.
"""

from typing import Any

__all__ = ["defs"]


def __getattr__(name: str) -> Any:
    if name == "defs":
        from .definitions import defs

        return defs
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), "defs"])
