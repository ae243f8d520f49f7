"""Resources per deployment, chosen by `NETFLIX_DEPLOYMENT` (default `local`).

local: one SparkSession in the Dagster process (or a client of `make dev`'s warm Spark
Connect server, `NETFLIX_SPARK_REMOTE`), the lake on local disk.
The local executor keeps a run in one process on purpose: a SparkSession (JVM)
takes ~10 s to start on a 2-core laptop, and the multiprocess executor would
start one per step; in process, every step of a run shares one session. It runs
the run's ready steps in threads of that process (`step_threads.py`,
`NETFLIX_STEP_THREADS`, default 2; 1 is Dagster's in-process executor).

prod: every Spark step (assets and checks) runs on Databricks through
dagster-databricks' step launcher; the lake is an ADLS Gen2 container
(`abfss://`), Delta tables go through the project's Delta IO manager and the
pull records through the JSON IO manager (both deployments: no pickle IO
manager anywhere, see io_managers/json_records.py); the landing zone is on
ADLS too. Steps only wait on Databricks, so they run in parallel processes.
staging: prod's resources with the lake under the `staging/` prefix, for trying a
branch against real Databricks without touching production tables.
See DEPLOYMENT.md for the variables.
"""

from __future__ import annotations

from typing import Any, Optional

import dagster as dg

from . import settings
from .io_managers.delta import SparkDeltaIOManager
from .io_managers.json_records import JSON_IO_MANAGER_KEY, JsonRecordsIOManager
from .resources.http_source import HttpSourceResource
from .resources.lake import DEFAULT_LAKE_URI, LakeResource
from .resources.landing import LandingZoneResource
from .resources.databricks import STEP_LAUNCHER_KEY, databricks_step_launcher, local_step_launcher
from .resources.spark import REMOTE_ENV, SparkResource
from .resources.sql_endpoint import DEFAULT_PORT as SQL_PORT, SqlEndpointResource
from .step_threads import step_threads_executor

DEPLOYMENTS = ("local", "prod", "staging")
# Two steps at once on two cores: a warm bundled run took 34-39 s against 49-55 s one step at a
# time (BENCHMARKS.md, "A run's steps in threads"); each step's Spark jobs leave the cores idle
# between them (planning, commits), which the other step fills.
LOCAL_STEP_THREADS = 2


def deployment_name() -> str:
    name = settings.get("NETFLIX_DEPLOYMENT", "local")
    if name not in DEPLOYMENTS:
        raise ValueError(f"NETFLIX_DEPLOYMENT={name!r}: expected one of {DEPLOYMENTS}")
    return name


def local_resources(lake_uri: str | None = None, **overrides: Any) -> dict[str, Any]:
    """The embedded deployment. `NETFLIX_LAKE_URI` (a directory) moves the lake."""
    lake = LakeResource(root=lake_uri or settings.get("NETFLIX_LAKE_URI") or DEFAULT_LAKE_URI)
    # Runs launched under `make dev` use its warm Spark Connect server (resources/spark.py). An
    # EnvVar, as a secret: a remote endpoint's URL may hold a token (`;token=`, Databricks Connect),
    # and a plain value would be stored with every run's job snapshot and shown in the UI.
    spark = SparkResource(remote=_secret(REMOTE_ENV))
    resources: dict[str, Any] = {
        "spark": spark,
        "lake": lake,
        "landing": LandingZoneResource.from_env(lake.landing_uri),
        "http_source": HttpSourceResource(),
        "delta_io_manager": SparkDeltaIOManager(lake=lake, spark=spark),
        JSON_IO_MANAGER_KEY: JsonRecordsIOManager(lake=lake),
        STEP_LAUNCHER_KEY: local_step_launcher(),
        # `make serve` on NETFLIX_SQL_PORT (its tables are registered by `serving/sql_catalog`).
        "sql_endpoint": SqlEndpointResource(port=int(settings.get("NETFLIX_SQL_PORT") or SQL_PORT)),
    }
    resources.update(overrides)
    return resources


def _required(name: str) -> str:
    value = settings.get(name)
    if not value:
        raise ValueError(f"NETFLIX_DEPLOYMENT={deployment_name()} needs {name} (see DEPLOYMENT.md)")
    return value


def _secret(name: str) -> Optional[dg.EnvVar]:
    return dg.EnvVar(name) if settings.get(name) else None


def prod_resources(default_prefix: str = "netflix", **overrides: Any) -> dict[str, Any]:
    """Databricks + ADLS Gen2. The lake is `abfss://<container>@<account>.dfs.core.windows.net/<prefix>`
    (`NETFLIX_LAKE_URI` overrides it whole); secrets are `dg.EnvVar`s, resolved at run time."""
    account = _required("NETFLIX_ADLS_ACCOUNT")
    container = settings.get("NETFLIX_ADLS_CONTAINER", "lakehouse")
    prefix = settings.get("NETFLIX_ADLS_PREFIX", default_prefix).strip("/")
    key, sas = _secret("NETFLIX_ADLS_ACCOUNT_KEY"), _secret("NETFLIX_ADLS_SAS_TOKEN")
    root = settings.get("NETFLIX_LAKE_URI") or f"abfss://{container}@{account}.dfs.core.windows.net/{prefix}"
    # Without key or SAS, adlfs and delta-rs use Azure's default chain (managed identity, az login).
    lake = LakeResource(root=root, account_name=account, account_key=key, sas_token=None if key else sas)
    spark = SparkResource(use_active_session=True)
    landing = (
        LandingZoneResource.from_env(lake.landing_uri)
        if settings.get("NETFLIX_LANDING_URI")
        else LandingZoneResource(uri=lake.landing_uri, account_name=account, account_key=key, sas_token=None if key else sas)
    )
    resources: dict[str, Any] = {
        "spark": spark,
        "lake": lake,
        "landing": landing,
        "http_source": HttpSourceResource(base_url=dg.EnvVar("NETFLIX_LOOKUP_BASE_URL")),
        "delta_io_manager": SparkDeltaIOManager(lake=lake, spark=spark),
        JSON_IO_MANAGER_KEY: JsonRecordsIOManager(lake=lake),
        STEP_LAUNCHER_KEY: databricks_step_launcher(),
        # Production serves through a Databricks SQL warehouse over Unity Catalog tables, registered
        # once per table by the platform team (DEPLOYMENT.md), not by the pipeline's runs.
        "sql_endpoint": SqlEndpointResource(enabled=False),
    }
    resources.update(overrides)
    return resources


def resources_for(name: str | None = None) -> dict[str, Any]:
    name = name or deployment_name()
    if name == "staging":
        return prod_resources(default_prefix="staging")
    return {"local": local_resources, "prod": prod_resources}[name]()


def local_step_threads() -> int:
    """Steps of a local run at once (`NETFLIX_STEP_THREADS`)."""
    return int(settings.get("NETFLIX_STEP_THREADS", str(LOCAL_STEP_THREADS)))


def executor_for(name: str | None = None) -> dg.ExecutorDefinition:
    name = name or deployment_name()
    if name == "local":
        threads = local_step_threads()
        if threads > 1:
            return step_threads_executor.configured({"max_concurrent": threads})
        return dg.in_process_executor
    # A prod step only uploads, submits and polls: many can wait on Databricks at once.
    return dg.multiprocess_executor.configured(
        {"max_concurrent": int(settings.get("NETFLIX_MAX_CONCURRENT_STEPS", "8"))}
    )
