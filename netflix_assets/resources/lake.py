"""Where the lake lives, and the layout of the data contract."""

from __future__ import annotations

import os

import dagster as dg
from pydantic import Field

from pathlib import Path

# The project directory (where pyproject.toml lives): the embedded lake is `./.lake` there,
# whatever the working directory of the process that runs a step.
PROJECT_DIR = Path(__file__).resolve().parents[2]
DEFAULT_LAKE_URI = str(PROJECT_DIR / ".lake")
LAYERS = ("raw", "bronze", "silver", "gold", "quarantine")


def normalize_root(root: str) -> str:
    """Absolute local paths (Spark resolves relative ones against its own cwd); URIs as given."""
    if "://" in root:
        return root.rstrip("/")
    return os.path.abspath(os.path.expanduser(root))


class LakeResource(dg.ConfigurableResource):
    """The lake root (`NETFLIX_LAKE_URI`) and the paths the contract derives from it.

    Locally the root is a directory; in production an `abfss://` URI.
    """

    root: str = Field(default=DEFAULT_LAKE_URI, description="Lake root URI or local directory.")

    @property
    def root_uri(self) -> str:
        return normalize_root(self.root)

    def storage_options(self) -> dict[str, str]:
        """Options for readers outside Spark (delta-rs in the sensor). None on local disk."""
        return {}

    def table_uri(self, layer: str, table: str) -> str:
        if layer not in LAYERS[1:]:
            raise ValueError(f"unknown lake layer {layer!r}; expected one of {LAYERS[1:]}")
        return f"{self.root_uri}/{layer}/{table}"

    @property
    def landing_uri(self) -> str:
        """The landing zone for titles files (the Auto Loader source)."""
        return f"{self.root_uri}/raw/netflix_titles"

    def api_dataset_uri(self, dataset: str) -> str:
        """Byte-for-byte copies of a dataset's HTTP pulls (the ADF copy sink), one folder per day."""
        return f"{self.root_uri}/raw/api/{dataset}"
