"""Every environment variable the product reads, in one table.

Why one table: a variable is read by the Dagster process (`deployments.py`, the landing zone's
`from_env`), and in production read again on the Databricks cluster, where the step launcher
must bring it: a secret through the workspace's secret scope (`scope_key`), a plain setting
forwarded in clear (`forwarded`). Written in three lists, a new landing-zone credential was one
list short of reaching the cluster. Here each variable says once what it is, and the landing
zone, the deployments and the Databricks forwarding derive their lists from it; a test checks
that the package reads no variable outside the table and that README or DEPLOYMENT.md
documents each one, and that the package reads each of them through `get` (or `raw`), never
`os.environ` directly. No import of the package or of Dagster: anything may read it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Optional


@dataclass(frozen=True)
class Var:
    name: str
    doc: str
    # A secret: the key of the Databricks secret scope that holds it for the cluster.
    scope_key: Optional[str] = None
    # A plain setting the remote step needs to rebuild the same resources, sent in clear.
    forwarded: bool = False
    # The `LandingZoneResource` field it sets (`LandingZoneResource.from_env`).
    landing_field: Optional[str] = None


VARS: dict[str, Var] = {
    v.name: v
    for v in (
        # What runs where.
        Var("NETFLIX_DEPLOYMENT", "resource set: local, prod or staging (deployments.py)", forwarded=True),
        Var("NETFLIX_PARTITIONS_START", "first day of the daily partitions (partitions.py)"),
        Var("NETFLIX_TODAY", "the day treated as today, for tests and replays (lib/clock.py)"),
        Var("NETFLIX_MAX_CONCURRENT_STEPS", "prod steps waiting on Databricks at once"),
        Var("NETFLIX_STEP_THREADS", "local: a run's steps running at once, in threads of its process (default 2; 1: one at a time)"),
        # The lake.
        Var("NETFLIX_LAKE_URI", "the lake's root URI", forwarded=True),
        Var("NETFLIX_ADLS_ACCOUNT", "prod: the lake's storage account", forwarded=True),
        Var("NETFLIX_ADLS_CONTAINER", "prod: the lake's container", forwarded=True),
        Var("NETFLIX_ADLS_PREFIX", "prod: the lake's folder in the container", forwarded=True),
        Var("NETFLIX_ADLS_ACCOUNT_KEY", "prod: the lake's account key", scope_key="adls-account-key"),
        Var("NETFLIX_ADLS_SAS_TOKEN", "prod: a SAS token instead of the key"),
        Var("NETFLIX_LAKE_AUTH", "how Spark on Databricks reaches the lake: account-key or cluster", forwarded=True),
        Var("AZURE_CLIENT_ID", "the service principal the cluster's Python readers sign in as", forwarded=True),
        Var("AZURE_TENANT_ID", "its tenant", forwarded=True),
        Var("AZURE_CLIENT_SECRET", "its secret", scope_key="azure-client-secret"),
        # The landing zone (a directory or abfs[s]:// URI; default: inside the lake).
        Var("NETFLIX_LANDING_URI", "the landing zone's URI", forwarded=True),
        Var("NETFLIX_LANDING_ACCOUNT", "its storage account", forwarded=True, landing_field="account_name"),
        Var("NETFLIX_LANDING_ACCOUNT_KEY", "its account key", scope_key="landing-account-key", landing_field="account_key"),
        Var("NETFLIX_LANDING_SAS_TOKEN", "its SAS token", scope_key="landing-sas-token", landing_field="sas_token"),
        Var("NETFLIX_LANDING_CONNECTION_STRING", "its connection string", scope_key="landing-connection-string",
            landing_field="connection_string"),
        Var("NETFLIX_LANDING_BLOB_ENDPOINT", "its blob endpoint (Azurite)", forwarded=True, landing_field="blob_endpoint"),
        # The lookup files. May carry a SAS token (a query string): a secret, which the step's
        # config validation resolves on the cluster even though the pull runs in the Dagster process.
        Var("NETFLIX_LOOKUP_BASE_URL", "base URL of the four lookup files", scope_key="lookup-base-url"),
        # Spark.
        Var("NETFLIX_SPARK_REMOTE", "sc://host:port of a Spark Connect server the runs use (resources/spark.py)"),
        Var("NETFLIX_SPARK_CONNECT_PORT", "port of the Spark Connect server make dev starts"),
        Var("NETFLIX_DELTA_JAR_VERSION", "the Delta jar version a local session resolves"),
        Var("NETFLIX_SQL_PORT", "port of the SQL endpoint (make serve)"),
        # Databricks.
        Var("DATABRICKS_HOST", "workspace URL", forwarded=True),
        Var("DATABRICKS_TOKEN", "personal access token"),
        Var("DATABRICKS_CLIENT_ID", "service principal (OAuth M2M)"),
        Var("DATABRICKS_CLIENT_SECRET", "its secret"),
        Var("ARM_CLIENT_ID", "an Azure service principal signing in to the workspace (with the two below)"),
        Var("ARM_CLIENT_SECRET", "its secret"),
        Var("ARM_TENANT_ID", "its tenant"),
        Var("DATABRICKS_CLUSTER_ID", "run steps on this all-purpose cluster", forwarded=True),
        Var("DATABRICKS_SECRET_SCOPE", "the secret scope read on the cluster", forwarded=True),
        Var("DATABRICKS_SPARK_VERSION", "job cluster: runtime"),
        Var("DATABRICKS_NODE_TYPE", "job cluster: node type"),
        Var("DATABRICKS_NUM_WORKERS", "job cluster: workers"),
        Var("DATABRICKS_STAGING_PREFIX", "DBFS staging folder of the step launcher"),
        Var("DATABRICKS_RUN_TIMEOUT_SECONDS", "a step's run timeout"),
        Var("DATABRICKS_POLL_INTERVAL_SECONDS", "polling interval of a step or Pipes run"),
        Var("DATABRICKS_PIPES_VOLUME", "/Volumes/... of the Pipes asset on serverless compute"),
        Var("NETFLIX_CLUSTER_WHEEL", "a wheel of this project installed as a cluster library"),
        Var("NETFLIX_CLUSTER_LIBRARIES", "pip specs replacing the cluster libraries"),
        # Tests only.
        Var("NETFLIX_FAULT_POINT", "a crash point for the fault-injection tests (lib/faults.py)"),
    )
}

# Derived lists.
LANDING_ENV = {v.landing_field: v.name for v in VARS.values() if v.landing_field}
CLUSTER_SECRETS = {v.scope_key: v.name for v in VARS.values() if v.scope_key}
FORWARDED_ENV = tuple(v.name for v in VARS.values() if v.forwarded)


def get(name: str, default: Optional[str] = None) -> Optional[str]:
    """The variable's value (`default` when unset or empty); a name missing from `VARS` is a bug."""
    return raw(name) or default


def raw(name: str) -> Optional[str]:
    """The value as set, an empty one included (None when unset): for the variables whose empty
    value means something (`NETFLIX_CLUSTER_LIBRARIES=""`: no cluster libraries)."""
    if name not in VARS:
        raise KeyError(f"{name} is not in netflix_assets.settings.VARS")
    return os.environ.get(name)
