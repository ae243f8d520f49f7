"""A Netflix lakehouse as a Dagster asset graph: bronze -> silver -> gold Delta tables.

`defs` is exposed here so that `dagster ... -m netflix_assets` works as the
data contract promises; building it starts no JVM.
"""

from .definitions import defs

__all__ = ["defs"]
