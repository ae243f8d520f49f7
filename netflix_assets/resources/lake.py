"""Where the lake lives, and the layout of the data contract."""

from __future__ import annotations

import os
from typing import Optional

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
    account_name: Optional[str] = Field(default=None, description="ADLS Gen2 storage account (prod).")
    account_key: Optional[str] = Field(default=None, description="Its key, from an EnvVar (prod).", repr=False)
    sas_token: Optional[str] = Field(default=None, description="Or a SAS token, from an EnvVar (prod).", repr=False)

    @property
    def root_uri(self) -> str:
        return normalize_root(self.root)

    @property
    def is_azure(self) -> bool:
        return self.root_uri.split("://", 1)[0] in ("abfs", "abfss", "az")

    def storage_options(self) -> dict[str, str]:
        """Options for Python readers and writers outside Spark: fsspec (adlfs) and delta-rs
        accept the same keys. Empty on local disk; without a key or SAS token, both
        fall back to Azure's default credential chain (managed identity, CLI login)."""
        if not self.is_azure:
            return {}
        options: dict[str, str] = {}
        if self.account_name:
            options["account_name"] = self.account_name
        if self.account_key:
            options["account_key"] = self.account_key
        elif self.sas_token:
            options["sas_token"] = self.sas_token
        return options

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
