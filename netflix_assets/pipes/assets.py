"""silver/netflix_titles through Dagster Pipes on Databricks: the option for new workspaces.

The prod code location runs Spark steps with dagster-databricks' step launcher
(`resources/databricks.py`), which ships the whole project and Dagster to the
cluster and replays the step's events. Dagster recommends Pipes instead
(`PipesDatabricksClient`): the asset body runs in the orchestrator and submits a
plain Databricks task; the task needs only `dagster-pipes` and reports its
materialization and check results back. This module is that alternative for one
asset, *not* wired into `definitions.py`; a new workspace starting from scratch
would write its Spark assets this way.

What runs where:

* orchestrator (the asset body): uploads the task script and the transforms wheel
  to DBFS (content-addressed paths), then `PipesDatabricksClient.run` writes the
  Pipes context to a DBFS temp dir, submits a one-task run on the existing cluster
  with the bootstrap params as CLI arguments, polls it and reads the message
  chunks back through the DBFS API;
* cluster (`silver_titles_task.py`): libraries `dagster-pipes` plus the wheel
  `netflix-lakehouse-transforms` (`netflix_assets.transforms`, `lib/delta.py` and
  `lib/faults.py`: pure PySpark, no Dagster), reads bronze, writes silver with
  `replaceWhere` on the day, reports.

Serverless (`DATABRICKS_PIPES_VOLUME=/Volumes/<catalog>/<schema>/<volume>` set): the same
task on Databricks serverless compute through `PipesDatabricksServerlessClient`. Serverless
has no DBFS and no cluster to install libraries on, so the script, the wheel, the Pipes
context and the message chunks all go to that Unity Catalog volume (Files API), and the
libraries are the task's serverless environment's dependencies. Its `spark` is a Spark
Connect session: the task uses only the DataFrame and SQL API (no `sparkContext`, RDDs or
py4j `DeltaTable`), which the emulator's serverless runs prove against a local Spark Connect
server (test_databricks_pipes.py).

Configuration (the same variables as the prod step launcher): `DATABRICKS_HOST`,
`DATABRICKS_TOKEN`, `DATABRICKS_CLUSTER_ID` (classic compute), `DATABRICKS_PIPES_VOLUME`
(serverless), `DATABRICKS_RUN_TIMEOUT_SECONDS`, and `NETFLIX_LAKE_URI` for the lake root the task's Spark reads and writes
(the compute needs its own access to ADLS, e.g. a Unity Catalog external location or
cluster-level credentials: no secret travels with the task). Usage:

    defs = dg.Definitions(
        assets=[silver_titles_pipes_asset()],
        resources={"pipes_databricks": pipes_databricks_resource()},
    )
"""

# No `from __future__ import annotations`: Dagster reads the asset's annotations at definition time.
import base64
import copy
import hashlib
import io
import zipfile
from pathlib import Path
from typing import Optional

import dagster as dg

from .. import settings
from ..partitions import daily_partitions
from ..resources.databricks import run_timeout_seconds

PIPES_RESOURCE_KEY = "pipes_databricks"
# A Unity Catalog volume path: set, the asset runs on serverless compute (see the module docstring).
PIPES_VOLUME_ENV = "DATABRICKS_PIPES_VOLUME"
SERVERLESS_ENVIRONMENT_KEY = "netflix"
# The serverless environment version the task asks for (a version fixes the Python and the
# preinstalled libraries); not checked against a real workspace here.
SERVERLESS_ENVIRONMENT_VERSION = "3"
SILVER_TITLES = dg.AssetKey(["silver", "netflix_titles"])
BRONZE_TITLES = dg.AssetKey(["bronze", "netflix_titles"])

PACKAGE_DIR = Path(__file__).resolve().parents[1]
TASK_SCRIPT = Path(__file__).with_name("silver_titles_task.py")
DEFAULT_DBFS_PREFIX = "dbfs:/netflix-lakehouse/pipes"

WHEEL_NAME = "netflix_lakehouse_transforms"
WHEEL_VERSION = "0.1.0"
# The sources the task imports, none of which imports Dagster: the silver transforms (with the
# contract's formats and lookups), the key verdict, and the Delta module (`lib/delta.py`, with
# the crash points its commits pass).
WHEEL_SOURCES = (
    "transforms/__init__.py", "transforms/silver.py", "transforms/formats.py", "transforms/quality.py",
    "lib/__init__.py", "lib/delta.py", "lib/faults.py",
)
# The wheel's own top-level package: no `definitions` import (the real
# `netflix_assets/__init__.py` builds the Dagster code location).
_WHEEL_INIT = '"""netflix_assets.transforms, lib.delta and lib.faults, for Databricks tasks (netflix_assets/pipes/assets.py)."""\n'


def pipes_databricks_resource(poll_interval_seconds: Optional[float] = None):
    """The Pipes client for the workspace of `DATABRICKS_HOST` / `DATABRICKS_TOKEN` (without a
    token, databricks-sdk's default credential chain): `PipesDatabricksServerlessClient` on the
    volume `DATABRICKS_PIPES_VOLUME` when it is set, else `PipesDatabricksClient` (DBFS)."""
    from dagster_databricks.pipes import (
        PipesDatabricksClient,
        PipesDatabricksServerlessClient,
        PipesUnityCatalogVolumesMessageReader,
    )
    from databricks.sdk import WorkspaceClient

    host = settings.get("DATABRICKS_HOST")
    if not host:
        raise ValueError("The Databricks Pipes client needs DATABRICKS_HOST (the workspace URL)")
    client = WorkspaceClient(host=host, token=settings.get("DATABRICKS_TOKEN"))
    interval = poll_interval_seconds or float(settings.get("DATABRICKS_POLL_INTERVAL_SECONDS", "5"))
    volume = settings.get(PIPES_VOLUME_ENV)
    if volume is None:
        return PipesDatabricksClient(client=client, poll_interval_seconds=interval)
    if not volume.startswith("/Volumes/") or len(volume.strip("/").split("/")) != 4:
        raise ValueError(f"{PIPES_VOLUME_ENV} must be a volume path /Volumes/<catalog>/<schema>/<volume>, got {volume!r}")
    volume = volume.rstrip("/")

    class ServerlessClient(PipesDatabricksServerlessClient):
        """A message reader per run, polling the volume at the run's interval (its own default is
        10 s). A reader counts the chunks it has read and never resets: one reader shared by two
        runs of a process (a step retried in process, two steps in threads) read none of the
        second run's messages, and that run recorded an empty materialization."""

        def run(self, **kwargs):
            per_run = copy.copy(self)
            per_run.message_reader = PipesUnityCatalogVolumesMessageReader(
                client=self.client, volume_path=self.volume_path, interval=interval)
            return PipesDatabricksServerlessClient.run(per_run, **kwargs)

    return ServerlessClient(client=client, volume_path=volume, poll_interval_seconds=interval)


def transforms_wheel() -> tuple[str, bytes]:
    """A pure-Python wheel of `netflix_assets.transforms` (file name, bytes), built in memory."""
    import csv

    dist_info = f"{WHEEL_NAME}-{WHEEL_VERSION}.dist-info"
    files: dict[str, bytes] = {"netflix_assets/__init__.py": _WHEEL_INIT.encode()}
    for relative in WHEEL_SOURCES:
        files[f"netflix_assets/{relative}"] = (PACKAGE_DIR / relative).read_bytes()
    files[f"{dist_info}/METADATA"] = (
        f"Metadata-Version: 2.1\nName: {WHEEL_NAME.replace('_', '-')}\nVersion: {WHEEL_VERSION}\n"
        "Summary: netflix_assets.transforms for Databricks tasks\n"
    ).encode()
    files[f"{dist_info}/WHEEL"] = b"Wheel-Version: 1.0\nGenerator: netflix_assets.pipes\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    record = io.StringIO()
    writer = csv.writer(record, lineterminator="\n")
    for name, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        writer.writerow([name, f"sha256={digest}", len(data)])
    writer.writerow([f"{dist_info}/RECORD", "", ""])
    files[f"{dist_info}/RECORD"] = record.getvalue().encode()

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))  # reproducible bytes
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, data)
    return f"{WHEEL_NAME}-{WHEEL_VERSION}-py3-none-any.whl", buffer.getvalue()


def _upload(client, path: str, data: bytes) -> None:
    """Upload to DBFS (create/add-block/close, any size) or to a volume (`/Volumes/...`, the
    Files API), unless the path already holds `data`'s size. Paths are content-addressed (their
    bytes' hash), and two runs of different days may stage the same code at once: rewriting it
    while the other's compute installs it could hand that one a part-written file (a DBFS upload
    is several calls). An upload that died part-way left another size: written again."""
    from databricks.sdk.errors import NotFound
    from databricks.sdk.service import files

    volume = path.startswith("/Volumes/")
    try:
        if volume:
            size = files.FilesAPI(client.api_client).get_metadata(path).content_length
        else:
            size = client.dbfs.get_status(path.removeprefix("dbfs:")).file_size
        if size == len(data):
            return
    except NotFound:
        pass
    if volume:
        files.FilesAPI(client.api_client).upload(path, io.BytesIO(data), overwrite=True)
    else:
        client.dbfs.upload(path.removeprefix("dbfs:"), io.BytesIO(data), overwrite=True)


def stage_code(client, prefix: str = DEFAULT_DBFS_PREFIX) -> tuple[str, str]:
    """Upload the task script and the transforms wheel under `prefix` (`dbfs:/...` or a
    volume's `/Volumes/...`); returns their paths.

    Directories are named by a hash of the contents: an all-purpose cluster keeps
    a library installed once per path, so new code must get a new path."""
    wheel_name, wheel = transforms_wheel()
    script = TASK_SCRIPT.read_bytes()
    digest = hashlib.sha256(script + wheel).hexdigest()[:16]
    base = f"{prefix.rstrip('/')}/{digest}"
    script_path, wheel_path = f"{base}/{TASK_SCRIPT.name}", f"{base}/{wheel_name}"
    _upload(client, script_path, script)
    _upload(client, wheel_path, wheel)
    return script_path, wheel_path


def _pipes_version() -> str:
    from importlib.metadata import version

    return version("dagster-pipes")


def silver_titles_pipes_asset(
    *, lake_uri: Optional[str] = None, cluster_id: Optional[str] = None, dbfs_prefix: str = DEFAULT_DBFS_PREFIX
) -> dg.AssetsDefinition:
    """silver/netflix_titles computed by a Databricks task through Pipes (see the module docstring).

    `lake_uri` / `cluster_id` default to `NETFLIX_LAKE_URI` / `DATABRICKS_CLUSTER_ID`, read at run
    time; the compute (an existing cluster or serverless) follows the `pipes_databricks` client."""
    from .silver_titles_task import CHECK_NAME

    @dg.asset(
        key=SILVER_TITLES,
        deps=[BRONZE_TITLES],
        partitions_def=daily_partitions,
        group_name="silver",
        kinds={"databricks", "spark", "delta", "silver"},
        description="Typed, trimmed titles; one row per show_id per partition. Computed on Databricks via Pipes.",
        check_specs=[
            # Blocking, as the same check of the step launcher's deployment: gold waits for it.
            dg.AssetCheckSpec(
                CHECK_NAME, asset=SILVER_TITLES, description="show_id is never null and unique within the partition.",
                blocking=True,
            )
        ],
    )
    def silver_netflix_titles_pipes(context: dg.AssetExecutionContext, pipes_databricks: dg.ResourceParam):
        lake = lake_uri or settings.get("NETFLIX_LAKE_URI")
        if not lake:
            raise ValueError("The Pipes asset needs NETFLIX_LAKE_URI")
        task, submit_args = submission(pipes_databricks, cluster_id or settings.get("DATABRICKS_CLUSTER_ID"), dbfs_prefix)
        invocation = pipes_databricks.run(
            task=task,
            context=context,
            extras={"lake_uri": lake},
            submit_args={
                **submit_args,
                "run_name": f"netflix-lakehouse silver_netflix_titles {context.partition_key}",
                # As the step launcher's runs: a run nothing cancels (its worker killed) still ends.
                "timeout_seconds": run_timeout_seconds(),
                # databricks-sdk retries a submit whose answer was lost: the retry finds the same run.
                "idempotency_token": f"{context.run_id}-{context.partition_key}-{context.retry_number}",
            },
        )
        return reported_results(invocation)

    return silver_netflix_titles_pipes


def reported_results(invocation) -> tuple:
    """What the task reported, and nothing implied: dagster-databricks returns normally from a run it
    cancelled (the UI's Terminate, run monitoring's maximum runtime), and its implicit
    materialization would record the partition as made by a task that never committed."""
    results = tuple(invocation.get_results(implicit_materializations=False))  # a list is not a result
    if not any(isinstance(result, dg.MaterializeResult) for result in results):
        run = invocation.metadata.get("Databricks Job Run ID")
        raise dg.Failure(
            f"The Databricks run {getattr(run, 'value', run)} reported no materialization of "
            f"{SILVER_TITLES.to_user_string()}: it was cancelled, or it ended before its commit.",
            metadata=dict(invocation.metadata),
        )
    return results


def submission(pipes_databricks, cluster_id: Optional[str], dbfs_prefix: str = DEFAULT_DBFS_PREFIX):
    """(task, submit_args) of the silver task for the client's compute, its code staged first:
    on serverless, the code goes to the client's volume and the libraries are the task's
    environment's dependencies; else the code goes to DBFS and the cluster installs the libraries."""
    from dagster_databricks.pipes import PipesDatabricksServerlessClient
    from databricks.sdk.service import compute, jobs

    serverless = isinstance(pipes_databricks, PipesDatabricksServerlessClient)
    if not serverless and not cluster_id:
        raise ValueError("The Pipes asset needs DATABRICKS_CLUSTER_ID (or DATABRICKS_PIPES_VOLUME for serverless)")
    prefix = f"{pipes_databricks.volume_path}/code" if serverless else dbfs_prefix
    script_path, wheel_path = stage_code(pipes_databricks.client, prefix)
    dependencies = [f"dagster-pipes=={_pipes_version()}", wheel_path]
    task = {"task_key": "silver_netflix_titles", "spark_python_task": {"python_file": script_path, "parameters": []}}
    if not serverless:
        task.update(
            existing_cluster_id=cluster_id,
            libraries=[{"pypi": {"package": dependencies[0]}}, {"whl": wheel_path}],
        )
        return jobs.SubmitTask.from_dict(task), {}
    task["environment_key"] = SERVERLESS_ENVIRONMENT_KEY
    environment = jobs.JobEnvironment(
        environment_key=SERVERLESS_ENVIRONMENT_KEY,
        spec=compute.Environment(environment_version=SERVERLESS_ENVIRONMENT_VERSION, dependencies=dependencies),
    )
    return jobs.SubmitTask.from_dict(task), {"environments": [environment]}
