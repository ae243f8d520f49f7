"""The Databricks step launcher of the `prod` deployment, configured from the environment.

Every Spark step (asset or check) requires the `pyspark_step_launcher` resource:
locally it is `None` and the step runs in the Dagster process; in prod it is
dagster-databricks' `DatabricksPySparkStepLauncher`, which zips this package,
uploads it to DBFS, submits a `spark_python_task` and replays the step's events.

Only variable *names* appear here. Secrets reach the launcher as `{"env": NAME}`
config (resolved at run time, never logged) and reach the cluster through a
Databricks secret scope (`secrets_to_env_variables`, `storage.adls2`), never
through `env_variables`: dagster-databricks pickles those, in clear, into the
step's `config.pkl` on DBFS staging, readable by anyone who can read DBFS.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import urllib.parse
from pathlib import Path
from typing import Any, Mapping, Optional

import dagster as dg

from .. import settings

STEP_LAUNCHER_KEY = "pyspark_step_launcher"
# `required_resource_keys` of every op that touches Spark: its session, the lake, and the step
# launcher that runs the op on Databricks in production (a no-op resource elsewhere).
SPARK_RESOURCES = frozenset({"spark", "lake", STEP_LAUNCHER_KEY})

PACKAGE_DIR = Path(__file__).resolve().parents[1]

# What the cluster needs beyond the Databricks Runtime (which ships pyspark,
# delta-spark, pandas, pyarrow, matplotlib). The launcher itself adds dagster,
# dagster-databricks, dagster-pyspark and databricks-sdk at the local versions.
# Pins match pyproject.toml: what runs on the cluster is what the tests ran.
# (No dagster-azure: nothing on the cluster imports it since the pickle IO manager is gone.)
CLUSTER_LIBRARIES = (
    "adlfs==2026.8.0",
    "fsspec==2026.9.0",
    "deltalake==1.6.6",
)

DEFAULT_SECRET_SCOPE = "netflix-lakehouse"
ADLS_KEY_SECRET = settings.VARS["NETFLIX_ADLS_ACCOUNT_KEY"].scope_key
# How Spark on Databricks reaches the lake.
# `account-key` (default): each step sets the account key from the secret scope in the Hadoop
# configuration (the launcher's `storage.adls2`, i.e. `sc._jsc.hadoopConfiguration()`), which
# only a classic cluster in dedicated (single user) access mode allows.
# `cluster`: the compute has its own access (a Unity Catalog external location over the lake's
# container, or a service principal in the cluster's Spark config, set by the workspace admin);
# no step touches the JVM, which standard (shared) access mode requires. The step's Python
# readers (delta-rs, adlfs) then use Azure's default credential chain: the service principal
# of AZURE_CLIENT_ID / AZURE_TENANT_ID, its secret from the scope (`azure-client-secret`).
LAKE_AUTH_ENV = "NETFLIX_LAKE_AUTH"
LAKE_AUTH_MODES = ("account-key", "cluster")
# Secret scope key -> environment variable on the cluster (`settings.VARS`): every secret the
# remote step needs to rebuild the resources the Dagster process has. The lake's key is always
# read (Spark's `storage.adls2` needs it); each other key only when its variable is set in the
# Dagster process, so the scope holds just the credentials the deployment uses.
CLUSTER_SECRETS = settings.CLUSTER_SECRETS
ALWAYS_READ_SECRETS = frozenset({ADLS_KEY_SECRET})
# Non-secret settings the remote step needs to rebuild the same resources: names, URIs
# without credentials, endpoints. They travel in clear (see the module docstring).
FORWARDED_ENV = settings.FORWARDED_ENV
# What gives a credential away in a value meant to be forwarded in clear (a SAS signature,
# an account key or SAS in a connection string, user info in a URL): refused, not forwarded.
_CREDENTIAL_MARKERS = ("sig=", "accountkey=", "sharedaccesssignature=", "password=")


def local_step_launcher() -> dg.ResourceDefinition:
    return dg.ResourceDefinition.none_resource(description="Local deployment: Spark steps run in the Dagster process.")


def auth_config() -> dict[str, Any]:
    """One Databricks credential, chosen by which variables are set (values stay in the environment)."""
    if settings.get("DATABRICKS_CLIENT_ID") and settings.get("DATABRICKS_CLIENT_SECRET"):
        return {
            "oauth_credentials": {
                "client_id": {"env": "DATABRICKS_CLIENT_ID"},
                "client_secret": {"env": "DATABRICKS_CLIENT_SECRET"},
            }
        }
    if settings.get("ARM_CLIENT_ID") and settings.get("ARM_CLIENT_SECRET") and settings.get("ARM_TENANT_ID"):
        return {
            "azure_credentials": {
                "azure_client_id": {"env": "ARM_CLIENT_ID"},
                "azure_client_secret": {"env": "ARM_CLIENT_SECRET"},
                "azure_tenant_id": {"env": "ARM_TENANT_ID"},
            }
        }
    if settings.raw("DATABRICKS_TOKEN") is not None:
        return {"databricks_token": {"env": "DATABRICKS_TOKEN"}}
    # Neither: databricks-sdk's default chain (~/.databrickscfg, the runtime's own credentials).
    return {}


def cluster_config() -> dict[str, Any]:
    """An existing (all-purpose) cluster if `DATABRICKS_CLUSTER_ID` is set, else a job cluster per step."""
    cluster_id = settings.get("DATABRICKS_CLUSTER_ID")
    if cluster_id:
        return {"existing": cluster_id}
    new: dict[str, Any] = {
        "spark_version": settings.get("DATABRICKS_SPARK_VERSION", "17.3.x-scala2.13"),
        "nodes": {"node_types": {"node_type_id": settings.get("DATABRICKS_NODE_TYPE", "Standard_D4ds_v5")}},
        "size": {"num_workers": int(settings.get("DATABRICKS_NUM_WORKERS", "2"))},
        "spark_conf": {
            "spark.sql.session.timeZone": "UTC",
            "spark.databricks.delta.optimizeWrite.enabled": "true",
            # A runtime on Spark 4.1+ would otherwise plan unions as the local session must not
            # (`LOCAL_SPARK_CONF`); on 17.3 (Spark 4.0) the key does not exist and is ignored.
            "spark.sql.unionOutputPartitioning": "false",
        },
        "custom_tags": [{"key": "project", "value": "netflix-lakehouse"}],
    }
    return {"new": new}


def cluster_libraries() -> tuple[str, ...]:
    """`CLUSTER_LIBRARIES`, or `NETFLIX_CLUSTER_LIBRARIES` (comma-separated pip specs) when a
    workspace installs them differently (a private index, libraries preinstalled on the cluster)."""
    override = settings.raw("NETFLIX_CLUSTER_LIBRARIES")
    if override is None:
        return CLUSTER_LIBRARIES
    return tuple(spec.strip() for spec in override.split(",") if spec.strip())


def run_timeout_seconds() -> int:
    """The limit of every Databricks run this project submits (step launcher and Pipes alike)."""
    return int(settings.get("DATABRICKS_RUN_TIMEOUT_SECONDS", "3600"))


def _libraries(extra: tuple[str, ...]) -> list[dict[str, Any]]:
    wheel = settings.get("NETFLIX_CLUSTER_WHEEL")  # optional: the project built as a wheel on DBFS/Volumes
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
    if not settings.get("DATABRICKS_HOST"):
        raise ValueError("NETFLIX_DEPLOYMENT=prod needs DATABRICKS_HOST (the workspace URL)")
    scope = settings.get("DATABRICKS_SECRET_SCOPE", DEFAULT_SECRET_SCOPE)
    forwarded = {name: value for name in FORWARDED_ENV if (value := settings.get(name))}
    for name, value in {**forwarded, **(env or {})}.items():
        if name in CLUSTER_SECRETS.values():
            raise ValueError(f"{name} is a secret: it reaches the cluster from the secret scope, never in env_variables")
        _refuse_credentials(name, value)
    config: dict[str, Any] = {
        "databricks_host": {"env": "DATABRICKS_HOST"},
        **auth_config(),
        "run_config": {
            "run_name": "netflix-lakehouse step",
            "cluster": cluster_config(),
            "libraries": _libraries(extra_libraries),
            "timeout_seconds": run_timeout_seconds(),
        },
        "env_variables": {**forwarded, **(env or {})},
        "secrets_to_env_variables": cluster_secrets(scope),
        "local_dagster_job_package_path": str(staged_code_dir()),
        "staging_prefix": settings.get("DATABRICKS_STAGING_PREFIX", "/dagster_staging"),
        "poll_interval_sec": poll_interval_sec or float(settings.get("DATABRICKS_POLL_INTERVAL_SECONDS", "5")),
        "verbose_logs": False,
    }
    account = settings.get("NETFLIX_ADLS_ACCOUNT")
    if account and lake_auth() == "account-key":
        # Spark on the cluster reads abfss:// with the account key from the secret scope.
        config["storage"] = {
            "adls2": {"secret_scope": scope, "storage_account_name": account, "storage_account_key_key": ADLS_KEY_SECRET}
        }
    return config


def lake_auth() -> str:
    """`NETFLIX_LAKE_AUTH` (see `LAKE_AUTH_MODES`), `account-key` when unset."""
    mode = settings.get(LAKE_AUTH_ENV, "account-key")
    if mode not in LAKE_AUTH_MODES:
        raise ValueError(f"{LAKE_AUTH_ENV}={mode!r}: expected one of {LAKE_AUTH_MODES}")
    return mode


def cluster_secrets(scope: str) -> list[dict[str, str]]:
    """`secrets_to_env_variables`: the scope keys the cluster reads, by name only (the launcher
    uploads these names; the runtime's `dbutils.secrets.get` fetches the values on the cluster).
    The lake's key is read whenever Spark needs it (`account-key`), every other key only when its
    variable is set here."""
    always = ALWAYS_READ_SECRETS if lake_auth() == "account-key" else frozenset()
    return [
        {"name": var, "key": key, "scope": scope}
        for key, var in CLUSTER_SECRETS.items()
        if key in always or settings.get(var)
    ]


def _refuse_credentials(name: str, value: str) -> None:
    """A forwarded value must hold no credential: it would be stored in clear on DBFS.
    The error names the variable, never its value."""
    lowered = value.lower()
    found = next((marker for marker in _CREDENTIAL_MARKERS if marker in lowered), None)
    if found is None and "://" in value:
        parts = urllib.parse.urlsplit(value)
        if parts.query or parts.fragment:
            found = "a query string"
        # `abfss://container@account...` names a container there, not a user.
        elif parts.password is not None or (parts.username and parts.scheme.lower() in ("http", "https")):
            found = "user info"
    if found is not None:
        raise ValueError(
            f"{name} is forwarded to the Databricks cluster in clear (DBFS staging) but looks like it holds a "
            f"credential ({found}): keep the credential in the secret scope (DEPLOYMENT.md, Secret scope)"
        )


def databricks_step_launcher(**kwargs: Any) -> dg.ResourceDefinition:
    from dagster_databricks import databricks_pyspark_step_launcher

    return databricks_pyspark_step_launcher.configured(step_launcher_config(**kwargs))


def _private_dir(path: Path) -> Path:
    """`path`, created mode 0700 if missing; refused unless it is a directory (not a link) of this
    user that neither group nor others may write."""
    import stat

    path.mkdir(mode=0o700, exist_ok=True)
    info = os.lstat(path)
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o022:
        raise RuntimeError(
            f"{path}: not a directory of this user closed to others (owner uid {info.st_uid}, mode "
            f"{stat.filemode(info.st_mode)}); the code shipped to Databricks is staged there: remove it"
        )
    return path


def staged_code_dir() -> Path:
    """A directory holding only this package, for the launcher to zip and ship.

    The launcher zips the whole directory it is given, and the project directory
    also holds `.venv`, `.lake` and node modules: ship a clean copy instead
    (sources only; the bundled demo data stays local). The copy is named by a
    hash of the sources and published with an atomic rename, so concurrent step
    processes never zip a half-written tree.

    The copies live in a directory of this user that no one else may write (`_private_dir`):
    the name is predictable from public sources, and a copy found there is shipped as is, to
    run on the cluster with the workspace's secrets.
    """
    import hashlib

    sources = sorted(p for p in PACKAGE_DIR.rglob("*.py") if "__pycache__" not in p.parts)
    digest = hashlib.sha256()
    for path in sources:
        digest.update(str(path.relative_to(PACKAGE_DIR)).encode())
        digest.update(path.read_bytes())
    parent = _private_dir(Path(tempfile.gettempdir()) / f"netflix-lakehouse-code-{os.getuid()}")
    root = parent / digest.hexdigest()[:16]
    if root.exists():
        return root
    staging = Path(tempfile.mkdtemp(prefix="staging-", dir=parent))
    shutil.copytree(
        PACKAGE_DIR, staging / PACKAGE_DIR.name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "data")
    )
    try:
        staging.rename(root)
    except OSError:  # another process published the same sources first
        shutil.rmtree(staging, ignore_errors=True)
    return root
