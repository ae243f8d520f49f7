"""Resources per deployment, chosen by `NETFLIX_DEPLOYMENT` (default `local`).

local: one SparkSession in the Dagster process, the lake on local disk.
The local executor is the in-process one on purpose: a SparkSession (JVM)
takes ~10 s to start on a 2-core laptop, and the multiprocess executor would
start one per step; in process, every step of a run shares one session.
"""

from __future__ import annotations

import os
from typing import Any

import dagster as dg

from .io_managers.delta import SparkDeltaIOManager
from .resources.http_source import HttpSourceResource
from .resources.lake import DEFAULT_LAKE_URI, LakeResource
from .resources.landing import LandingZoneResource
from .resources.spark import SparkResource

DEPLOYMENTS = ("local",)


def deployment_name() -> str:
    name = os.environ.get("NETFLIX_DEPLOYMENT", "local")
    if name not in DEPLOYMENTS:
        raise ValueError(f"NETFLIX_DEPLOYMENT={name!r}: expected one of {DEPLOYMENTS}")
    return name


def local_resources(lake_uri: str | None = None, **overrides: Any) -> dict[str, Any]:
    """The embedded deployment. `NETFLIX_LAKE_URI` (a directory) moves the lake."""
    lake = LakeResource(root=lake_uri or os.environ.get("NETFLIX_LAKE_URI") or DEFAULT_LAKE_URI)
    spark = SparkResource()
    resources: dict[str, Any] = {
        "spark": spark,
        "lake": lake,
        "landing": LandingZoneResource.from_env(lake.landing_uri),
        "http_source": HttpSourceResource(),
        "delta_io_manager": SparkDeltaIOManager(lake=lake, spark=spark),
        "pickle_io_manager": dg.FilesystemIOManager(base_dir=f"{lake.root_uri}/_dagster_io"),
    }
    resources.update(overrides)
    return resources


def resources_for(name: str | None = None) -> dict[str, Any]:
    name = name or deployment_name()
    return {"local": local_resources}[name]()


def executor_for(name: str | None = None) -> dg.ExecutorDefinition:
    return dg.in_process_executor
