"""The Databricks step launcher of the `prod` deployment, configured from the environment.

Every Spark step (asset or check) requires the `pyspark_step_launcher` resource:
locally it is `None` and the step runs in the Dagster process; in prod it is
dagster-databricks' `DatabricksPySparkStepLauncher`, which zips this package,
uploads it to DBFS, submits a `spark_python_task` and replays the step's events.

Only variable *names* appear here. Secrets reach the launcher as `{"env": NAME}`
config (resolved at run time, never logged) and reach the cluster through a
Databricks secret scope (`secrets_to_env_variables`, `storage.adls2`).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Mapping, Optional

import dagster as dg

STEP_LAUNCHER_KEY = "pyspark_step_launcher"
# `required_resource_keys` of every op that touches Spark.
SPARK_STEP = frozenset({STEP_LAUNCHER_KEY})

PACKAGE_DIR = Path(__file__).resolve().parents[1]

# What the cluster needs beyond the Databricks Runtime (which ships pyspark,
# delta-spark, pandas, pyarrow, matplotlib). The launcher itself adds dagster,
# dagster-databricks, dagster-pyspark and databricks-sdk at the local versions.
# Pins match pyproject.toml: what runs on the cluster is what the tests ran.
CLUSTER_LIBRARIES = (
    "dagster-azure==0.29.27",
    "adlfs==2026.8.0",
    "fsspec==2026.9.0",
    "deltalake==1.6.6",
)

DEFAULT_SECRET_SCOPE = "netflix-lakehouse"
# Secret scope key -> environment variable on the cluster.
CLUSTER_SECRETS = {
    "adls-account-key": "NETFLIX_ADLS_ACCOUNT_KEY",
}
# Non-secret settings the remote step needs to rebuild the same resources.
FORWARDED_ENV = (
    "NETFLIX_DEPLOYMENT",
    "NETFLIX_LAKE_URI",
    "NETFLIX_ADLS_ACCOUNT",
    "NETFLIX_ADLS_CONTAINER",
    "NETFLIX_ADLS_PREFIX",
    "NETFLIX_LANDING_URI",
    "NETFLIX_LANDING_ACCOUNT",
    "NETFLIX_LOOKUP_BASE_URL",
    "DATABRICKS_HOST",
    "DATABRICKS_CLUSTER_ID",
    "DATABRICKS_SECRET_SCOPE",
)


def local_step_launcher() -> dg.ResourceDefinition:
    return dg.ResourceDefinition.none_resource(description="Local deployment: Spark steps run in the Dagster process.")


def _env(name: str) -> Optional[str]:
    value = os.environ.get(name)
    return value if value else None


def auth_config() -> dict[str, Any]:
    """One Databricks credential, chosen by which variables are set (values stay in the environment)."""
    if _env("DATABRICKS_CLIENT_ID") and _env("DATABRICKS_CLIENT_SECRET"):
        return {
            "oauth_credentials": {
                "client_id": {"env": "DATABRICKS_CLIENT_ID"},
                "client_secret": {"env": "DATABRICKS_CLIENT_SECRET"},
            }
        }
    if _env("ARM_CLIENT_ID") and _env("ARM_CLIENT_SECRET") and _env("ARM_TENANT_ID"):
        return {
            "azure_credentials": {
                "azure_client_id": {"env": "ARM_CLIENT_ID"},
                "azure_client_secret": {"env": "ARM_CLIENT_SECRET"},
                "azure_tenant_id": {"env": "ARM_TENANT_ID"},
            }
        }
    if _env("DATABRICKS_TOKEN") is not None or "DATABRICKS_TOKEN" in os.environ:
        return {"databricks_token": {"env": "DATABRICKS_TOKEN"}}
    # Neither: databricks-sdk's default chain (~/.databrickscfg, the runtime's own credentials).
    return {}


def cluster_config() -> dict[str, Any]:
    """An existing (all-purpose) cluster if `DATABRICKS_CLUSTER_ID` is set, else a job cluster per step."""
    cluster_id = _env("DATABRICKS_CLUSTER_ID")
    if cluster_id:
        return {"existing": cluster_id}
    new: dict[str, Any] = {
        "spark_version": os.environ.get("DATABRICKS_SPARK_VERSION", "17.3.x-scala2.13"),
        "nodes": {"node_types": {"node_type_id": os.environ.get("DATABRICKS_NODE_TYPE", "Standard_D4ds_v5")}},
        "size": {"num_workers": int(os.environ.get("DATABRICKS_NUM_WORKERS", "2"))},
        "spark_conf": {
            "spark.sql.session.timeZone": "UTC",
            "spark.databricks.delta.optimizeWrite.enabled": "true",
        },
        "custom_tags": [{"key": "project", "value": "netflix-lakehouse"}],
    }
    return {"new": new}


def cluster_libraries() -> tuple[str, ...]:
    """`CLUSTER_LIBRARIES`, or `NETFLIX_CLUSTER_LIBRARIES` (comma-separated pip specs) when a
    workspace installs them differently (a private index, libraries preinstalled on the cluster)."""
    override = os.environ.get("NETFLIX_CLUSTER_LIBRARIES")
    if override is None:
        return CLUSTER_LIBRARIES
    return tuple(spec.strip() for spec in override.split(",") if spec.strip())


def _libraries(extra: tuple[str, ...]) -> list[dict[str, Any]]:
    wheel = _env("NETFLIX_CLUSTER_WHEEL")  # optional: the project built as a wheel on DBFS/Volumes
    libs: list[dict[str, Any]] = [{"pypi": {"package": spec}} for spec in (*cluster_libraries(), *extra)]
    if wheel:
        libs.append({"whl": wheel})
    return libs


def step_launcher_config(
    *,
    extra_libraries: tuple[str, ...] = (),
    poll_interval_sec: Optional[float] = None,
    env: Optional[Mapping[str, str]] = None,
) -> dict[str, Any]:
    """The launcher's config from the environment (raises if `DATABRICKS_HOST` is unset)."""
    if not _env("DATABRICKS_HOST"):
        raise ValueError("NETFLIX_DEPLOYMENT=prod needs DATABRICKS_HOST (the workspace URL)")
    scope = os.environ.get("DATABRICKS_SECRET_SCOPE", DEFAULT_SECRET_SCOPE)
    forwarded = {name: os.environ[name] for name in FORWARDED_ENV if _env(name)}
    config: dict[str, Any] = {
        "databricks_host": {"env": "DATABRICKS_HOST"},
        **auth_config(),
        "run_config": {
            "run_name": "netflix-lakehouse step",
            "cluster": cluster_config(),
            "libraries": _libraries(extra_libraries),
            "timeout_seconds": int(os.environ.get("DATABRICKS_RUN_TIMEOUT_SECONDS", "3600")),
        },
        "env_variables": {**forwarded, **(env or {})},
        "secrets_to_env_variables": [
            {"name": var, "key": key, "scope": scope} for key, var in CLUSTER_SECRETS.items()
        ],
        "local_dagster_job_package_path": str(staged_code_dir()),
        "staging_prefix": os.environ.get("DATABRICKS_STAGING_PREFIX", "/dagster_staging"),
        "poll_interval_sec": poll_interval_sec or float(os.environ.get("DATABRICKS_POLL_INTERVAL_SECONDS", "5")),
        "verbose_logs": False,
    }
    account = _env("NETFLIX_ADLS_ACCOUNT")
    if account:
        # Spark on the cluster reads abfss:// with the account key from the secret scope.
        config["storage"] = {
            "adls2": {"secret_scope": scope, "storage_account_name": account, "storage_account_key_key": "adls-account-key"}
        }
    return config


def databricks_step_launcher(**kwargs: Any) -> dg.ResourceDefinition:
    from dagster_databricks import databricks_pyspark_step_launcher

    return databricks_pyspark_step_launcher.configured(step_launcher_config(**kwargs))


def staged_code_dir() -> Path:
    """A directory holding only this package, for the launcher to zip and ship.

    The launcher zips the whole directory it is given, and the project directory
    also holds `.venv`, `.lake` and node modules: ship a clean copy instead
    (sources only; the bundled demo data stays local). The copy is named by a
    hash of the sources and published with an atomic rename, so concurrent step
    processes never zip a half-written tree.
    """
    import hashlib

    sources = sorted(p for p in PACKAGE_DIR.rglob("*.py") if "__pycache__" not in p.parts)
    digest = hashlib.sha256()
    for path in sources:
        digest.update(str(path.relative_to(PACKAGE_DIR)).encode())
        digest.update(path.read_bytes())
    root = Path(tempfile.gettempdir()) / f"netflix-lakehouse-code-{digest.hexdigest()[:16]}"
    if root.exists():
        return root
    staging = Path(tempfile.mkdtemp(prefix="netflix-lakehouse-code-", dir=tempfile.gettempdir()))
    shutil.copytree(
        PACKAGE_DIR, staging / PACKAGE_DIR.name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "data")
    )
    try:
        staging.rename(root)
    except OSError:  # another process published the same sources first
        shutil.rmtree(staging, ignore_errors=True)
    return root
