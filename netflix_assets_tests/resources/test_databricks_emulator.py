"""The Databricks emulator, driven by the real `databricks_pyspark_step_launcher`.

A Dagster step goes through dagster-databricks exactly as in prod (zip and upload
to DBFS, `runs/submit`, poll `runs/get`, replay the events read from DBFS) against
`DatabricksEmulator`, whose cluster runs it in a subprocess that sees only the
cluster's libraries. No test here starts Spark.
"""

from __future__ import annotations

import base64
import importlib.metadata
import json
import os
import pickle
import posixpath
import shutil
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import dagster as dg
import pytest
from databricks.sdk import WorkspaceClient
from databricks.sdk.errors import DatabricksError

from netflix_assets_tests import databricks_emulator_assets as remote
from netflix_assets_tests.databricks_emulator import DEFAULT_CLUSTER_ID, DatabricksEmulator

SECRET_SCOPE = "netflix-emulator-test"
SECRET_KEY = "greeting"
SECRET_VALUE = "s3cr3t-from-the-scope"
TOKEN = "dapi-emulator-test-token"
STAGED_FILES = ["code.zip", "config.pkl", "databricks_step_main.py", "step_run_ref.pkl"]
TESTS_DIR = Path(__file__).resolve().parents[1]


@pytest.fixture
def emulator(tmp_path):
    with DatabricksEmulator(tmp_path / "databricks", secrets={(SECRET_SCOPE, SECRET_KEY): SECRET_VALUE}) as emu:
        yield emu


@pytest.fixture(scope="module")
def code_dir() -> Path:
    """What the launcher zips and ships: the definitions module and its package only.

    `build_pyspark_zip` zips the whole directory it is given, and its exclusions
    (`/venv/`, not `/.venv/`) would ship the repository's 1.6 GB virtualenv. Its
    `.*pytest.*` exclusion is matched against absolute paths, so the copy must not
    live under pytest's `tmp_path` either (the zip would be empty).
    """
    root = Path(tempfile.mkdtemp(prefix="databricks-emulator-code-"))
    (root / "netflix_assets_tests").mkdir()
    (root / "netflix_assets_tests" / "__init__.py").write_text("")
    shutil.copy(TESTS_DIR / "databricks_emulator_assets.py", root / "netflix_assets_tests")
    yield root
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def instance():
    with dg.instance_for_test() as instance:
        yield instance


def launcher_config(
    emulator: DatabricksEmulator,
    code_dir: Path,
    *,
    cluster: dict | None = None,
    libraries: tuple[str, ...] = (),
    secret_scope: str = SECRET_SCOPE,
) -> dict:
    return {
        "databricks_host": emulator.host,
        "databricks_token": TOKEN,
        "run_config": {
            "run_name": "emulator test step",
            "cluster": cluster or {"existing": emulator.cluster_id},
            "libraries": [{"pypi": {"package": spec}} for spec in libraries],
        },
        "secrets_to_env_variables": [{"name": remote.SECRET_ENV_VAR, "scope": secret_scope, "key": SECRET_KEY}],
        "local_dagster_job_package_path": str(code_dir),
        "poll_interval_sec": 0.5,
        "verbose_logs": False,
    }


def execute(job_factory, instance, io_dir: Path, config: dict) -> dg.ExecutionResult:
    run_config = {
        "resources": {
            "pyspark_step_launcher": {"config": config},
            "io_manager": {"config": {"base_dir": str(io_dir)}},
        }
    }
    return dg.execute_job(dg.reconstructable(job_factory), instance, run_config=run_config)


def step_failure_message(result) -> str:
    failures = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    assert failures, "the step did not fail"
    return failures[0].step_failure_data.error.to_string()


def only_run(emulator: DatabricksEmulator):
    assert len(emulator.runs) == 1, emulator.runs
    return next(iter(emulator.runs.values()))


def test_step_runs_on_the_emulated_cluster(emulator, code_dir, instance, tmp_path, monkeypatch):
    # Credentials from the environment, as in prod (netflix_assets/resources/databricks.py): the
    # token stays local (databricks_step_main sets DATABRICKS_TOKEN="" on the cluster, where the
    # rebuilt launcher falls back to the runtime's own credentials); the host is forwarded.
    monkeypatch.setenv("DATABRICKS_HOST", emulator.host)
    monkeypatch.setenv("DATABRICKS_TOKEN", TOKEN)
    config = launcher_config(emulator, code_dir, libraries=(f"fsspec=={importlib.metadata.version('fsspec')}",))
    config.update(
        databricks_host={"env": "DATABRICKS_HOST"},
        databricks_token={"env": "DATABRICKS_TOKEN"},
        env_variables={"DATABRICKS_HOST": emulator.host},
    )
    started = time.monotonic()
    result = execute(remote.fingerprint_job, instance, tmp_path / "io", config)
    elapsed = time.monotonic() - started
    assert result.success

    # The materialization and the remote step's events are in the local instance.
    materialization = instance.get_latest_materialization_event(dg.AssetKey("remote_fingerprint"))
    assert materialization is not None and materialization.run_id == result.run_id
    records = instance.all_logs(result.run_id)
    replayed = [r.dagster_event.event_type_value for r in records if r.is_dagster_event]
    for event_type in ("STEP_START", "STEP_OUTPUT", "ASSET_MATERIALIZATION", "HANDLED_OUTPUT", "STEP_SUCCESS"):
        assert event_type in replayed
    assert any(r.user_message == "running on the emulated cluster" for r in records)
    run_urls = [
        r.dagster_event.engine_event_data.metadata["databricks_run_url"].value
        for r in records
        if r.is_dagster_event
        and r.dagster_event.event_type_value == "ENGINE_EVENT"
        and "databricks_run_url" in r.dagster_event.engine_event_data.metadata
    ]

    # It ran in the cluster's process, from the uploaded code, with the secret.
    run = only_run(emulator)
    fingerprint = pickle.loads((tmp_path / "io" / "remote_fingerprint").read_bytes())
    assert fingerprint["pid"] == run.pid != os.getpid()
    assert fingerprint["secret"] == SECRET_VALUE
    assert fingerprint["runtime_version"] == "17.3"
    assert fingerprint["launcher_auth"] == ("runtime", emulator.host)
    assert Path(fingerprint["module_file"]).is_relative_to(run.run_dir / "tmp")
    staging = f"/dagster_staging/{result.run_id}/remote_fingerprint"
    assert fingerprint["argv"] == [str(emulator.dbfs_local_path(staging + "/databricks_step_main.py"))] + [
        str(emulator.dbfs_local_path(f"{staging}/{name}")) for name in ("step_run_ref.pkl", "config.pkl", "code.zip")
    ]
    assert "stdout of the emulated driver" in emulator.dbfs_local_path(staging + "/stdout").read_text()
    assert run.life_cycle_states == ["PENDING", "RUNNING", "TERMINATED"]
    assert run.result_state == "SUCCESS"
    assert run_urls == [f"{emulator.host}/?o=0#job/{run.job_id}/run/{run.run_id}"]
    assert not run.spark_started  # sc and spark are lazy: this step never touched them
    assert {"dagster", "dagster-databricks", "fsspec", "pyspark", "pandas"} <= set(run.installed_distributions)
    assert "adlfs" not in run.installed_distributions

    # The requests dagster-databricks made.
    creates = emulator.requests_to("dbfs/create", "POST")
    assert sorted(posixpath.basename(r.body["path"]) for r in creates) == STAGED_FILES
    assert all(r.body["path"] == f"{staging}/{posixpath.basename(r.body['path'])}" for r in creates)
    assert len(emulator.requests_to("dbfs/close", "POST")) == 4
    assert len(emulator.requests_to("dbfs/add-block", "POST")) >= 4
    (submit,) = emulator.requests_to("jobs/runs/submit")
    assert submit.path == "/api/2.2/jobs/runs/submit" and submit.status == 200
    (task,) = submit.body["tasks"]
    assert task["existing_cluster_id"] == DEFAULT_CLUSTER_ID
    assert task["spark_python_task"] == {
        "python_file": f"dbfs://{staging}/databricks_step_main.py",
        "parameters": [f"/dbfs/{staging}/{name}" for name in ("step_run_ref.pkl", "config.pkl", "code.zip")],
    }
    packages = [lib["pypi"]["package"] for lib in task["libraries"]]
    assert packages == [
        f"fsspec=={importlib.metadata.version('fsspec')}",
        f"dagster=={dg.__version__}",
        f"dagster-databricks=={importlib.metadata.version('dagster-databricks')}",
        f"dagster-pyspark=={importlib.metadata.version('dagster-pyspark')}",
        f"databricks-sdk=={importlib.metadata.version('databricks-sdk')}",
    ]
    polls = emulator.requests_to("jobs/runs/get", "GET")
    assert len(polls) >= 2 and all(r.query["run_id"] == str(run.run_id) and r.status == 200 for r in polls)
    event_reads = [r for r in emulator.requests_to("dbfs/read", "GET") if r.query["path"].endswith("/0_events.pkl")]
    assert event_reads and event_reads[-1].status == 200
    on_cluster = run.state_history[-1][2] - run.state_history[0][2]
    print(f"\none emulated Databricks step: {elapsed:.1f}s in execute_job, {on_cluster:.1f}s from submit to TERMINATED")


@pytest.mark.parametrize("with_adlfs", [False, True], ids=["adlfs-not-listed", "adlfs-listed"])
def test_cluster_has_only_the_listed_libraries(emulator, code_dir, instance, tmp_path, with_adlfs):
    # The code location imports adlfs: neither the runtime nor the launcher's defaults provide it.
    libraries = (f"adlfs=={importlib.metadata.version('adlfs')}",) if with_adlfs else ()
    config = launcher_config(emulator, code_dir, libraries=libraries)
    result = execute(remote.adlfs_fingerprint_job, instance, tmp_path / "io", config)

    run = only_run(emulator)
    if with_adlfs:
        assert result.success, run.state_message
        # adlfs comes with its requirements, extras included (azure-storage-blob[aio] -> aiohttp),
        # but not with its extras-only ones (pytest; extra == "tests").
        assert {"adlfs", "azure-storage-blob", "aiohttp"} <= set(run.installed_distributions)
        assert "pytest" not in run.installed_distributions
        return
    assert not result.success
    expected = "No module named 'adlfs' (library not installed on the cluster"
    assert (run.life_cycle_state, run.result_state) == ("TERMINATED", "FAILED")
    assert expected in run.state_message
    assert expected in run.stderr()
    assert expected in step_failure_message(result)
    # The driver's stderr (uploaded to DBFS by databricks_step_main) reaches the Dagster logs.
    assert any(expected in (r.user_message or "") for r in instance.all_logs(result.run_id))


def test_pinning_another_version_than_tested_fails_library_installation(emulator, code_dir, instance, tmp_path):
    installed = importlib.metadata.version("fsspec")
    config = launcher_config(emulator, code_dir, libraries=("fsspec==2023.1.0",))
    result = execute(remote.fingerprint_job, instance, tmp_path / "io", config)

    assert not result.success
    run = only_run(emulator)
    assert (run.life_cycle_state, run.result_state) == ("INTERNAL_ERROR", "FAILED")
    assert "RUNNING" not in run.life_cycle_states
    assert run.state_message.startswith(
        'Library installation failed for library due to user error for pypi { package: "fsspec==2023.1.0" }'
    )
    assert f"fsspec=={installed}" in run.state_message
    assert "Library installation failed" in step_failure_message(result)


def test_malformed_submit_fails_the_step(emulator, code_dir, instance, tmp_path):
    # Dagster's config schema accepts an empty spark_version; Databricks does not.
    cluster = {
        "new": {
            "spark_version": "",
            "nodes": {"node_types": {"node_type_id": "Standard_D4ds_v5"}},
            "size": {"num_workers": 1},
        }
    }
    result = execute(remote.fingerprint_job, instance, tmp_path / "io", launcher_config(emulator, code_dir, cluster=cluster))

    assert not result.success
    assert emulator.runs == {}
    (submit,) = emulator.requests_to("jobs/runs/submit")
    assert (submit.status, submit.error_code) == (400, "INVALID_PARAMETER_VALUE")
    assert submit.body["tasks"][0]["new_cluster"]["spark_version"] == ""
    assert "Missing required field: new_cluster.spark_version" in step_failure_message(result)


def test_unknown_secret_scope_fails_the_run(emulator, code_dir, instance, tmp_path):
    config = launcher_config(emulator, code_dir, secret_scope="no-such-scope")
    result = execute(remote.fingerprint_job, instance, tmp_path / "io", config)

    assert not result.success
    run = only_run(emulator)
    expected = f"Secret does not exist with scope: no-such-scope and key: {SECRET_KEY}"
    assert run.result_state == "FAILED"
    assert expected in run.state_message
    assert expected in step_failure_message(result)
    assert not run.spark_started


# --------------------------------------------------------------------------- the API itself


@pytest.fixture
def client(emulator) -> WorkspaceClient:
    return WorkspaceClient(host=emulator.host, token=TOKEN)


def valid_submit(python_file: str = "dbfs:/scripts/main.py") -> dict:
    return {
        "run_name": "direct",
        "tasks": [
            {
                "task_key": "main",
                "existing_cluster_id": DEFAULT_CLUSTER_ID,
                "spark_python_task": {"python_file": python_file, "parameters": []},
                "libraries": [{"pypi": {"package": "six"}}],
            }
        ],
    }


NEW_CLUSTER = {"spark_version": "17.3.x-scala2.13", "node_type_id": "Standard_D4ds_v5", "num_workers": 1}


def _task(**changes):
    body = valid_submit()
    body["tasks"][0].update(changes)
    body["tasks"][0] = {k: v for k, v in body["tasks"][0].items() if v is not None}
    return body


@pytest.mark.parametrize(
    "body, message",
    [
        ({"run_name": "no tasks"}, "At least one task is required"),
        ({"tasks": [valid_submit()["tasks"][0]] * 2}, "single-task"),
        (_task(task_key=None), "Missing required field: task_key"),
        (_task(spark_python_task=None), "exactly one task type"),
        (_task(notebook_task={"notebook_path": "/x"}), "exactly one task type"),
        (_task(spark_python_task={"python_file": "/Workspace/main.py"}), "dbfs:/"),
        (_task(existing_cluster_id="0000-000000-unknown"), "Cluster 0000-000000-unknown does not exist"),
        (_task(existing_cluster_id=None), "serverless compute needs an environment_key"),
        (_task(existing_cluster_id=None, environment_key="e"), "Serverless compute is not enabled"),
        (_task(new_cluster=NEW_CLUSTER), "only one of existing_cluster_id, new_cluster"),
        (_task(existing_cluster_id=None, new_cluster={**NEW_CLUSTER, "spark_version": None}), "new_cluster.spark_version"),
        (_task(existing_cluster_id=None, new_cluster={**NEW_CLUSTER, "spark_version": "latest"}), "Invalid spark version"),
        (_task(existing_cluster_id=None, new_cluster={**NEW_CLUSTER, "node_type_id": None}), "node_type_id or instance_pool_id"),
        (_task(existing_cluster_id=None, new_cluster={**NEW_CLUSTER, "num_workers": None}), "num_workers and autoscale"),
        (_task(libraries=[{"pypi": {}}]), "pypi.package"),
        (_task(libraries=[{}]), "exactly one of"),
        (_task(libraries=[{"whl": "dbfs:/libs/project.zip"}]), ".whl"),
        (_task(libraries=[{"pypi": {"package": "six"}, "jar": "dbfs:/a.jar"}]), "exactly one of"),
    ],
)
def test_runs_submit_is_validated(client, emulator, body, message):
    body = json.loads(json.dumps(body))
    for task in body.get("tasks", []):  # None marks a field to drop
        for key in [k for k, v in task.items() if v is None]:
            del task[key]
        if "new_cluster" in task:
            task["new_cluster"] = {k: v for k, v in task["new_cluster"].items() if v is not None}
    with pytest.raises(DatabricksError) as raised:
        client.api_client.do("POST", "/api/2.2/jobs/runs/submit", body=body)
    assert raised.value.error_code == "INVALID_PARAMETER_VALUE"
    assert message in str(raised.value)
    assert emulator.runs == {}


def test_requests_need_a_bearer_token_and_a_known_endpoint(emulator):
    def call(path: str, token: str | None) -> tuple[int, dict]:
        request = urllib.request.Request(emulator.host + path)
        if token:
            request.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(request) as response:
                return response.status, json.load(response)
        except urllib.error.HTTPError as e:
            return e.code, json.load(e)

    assert call("/api/2.0/dbfs/get-status?path=/", None) == (
        401,
        {"error_code": "UNAUTHENTICATED", "message": "Credential was not sent or was of an unsupported type for this API."},
    )
    assert call("/api/2.0/dbfs/get-status?path=/", TOKEN)[0] == 200
    assert call("/api/2.2/jobs/runs/gett?run_id=1", TOKEN) == (
        404,
        {"error_code": "ENDPOINT_NOT_FOUND", "message": "No API found for 'GET /api/2.2/jobs/runs/gett'"},
    )


def test_dbfs(client, emulator):
    payload = bytes(range(256)) * 10
    client.dbfs.put("/files/blob.bin", contents=base64.b64encode(payload).decode())
    assert emulator.dbfs_local_path("dbfs:/files/blob.bin").read_bytes() == payload

    part = client.dbfs.read("/files/blob.bin", offset=100, length=50)
    assert part.bytes_read == 50 and base64.b64decode(part.data) == payload[100:150]
    tail = client.dbfs.read("/files/blob.bin", offset=2500, length=1000)
    assert tail.bytes_read == 60 and base64.b64decode(tail.data) == payload[2500:]
    status = client.dbfs.get_status("/files/blob.bin")
    assert (status.path, status.is_dir, status.file_size) == ("/files/blob.bin", False, len(payload))
    assert [f.path for f in client.dbfs.list("/files")] == ["/files/blob.bin"]

    def error_code(call) -> str:
        with pytest.raises(DatabricksError) as raised:
            call()
        return raised.value.error_code

    assert error_code(lambda: client.dbfs.read("/files/missing.bin")) == "RESOURCE_DOES_NOT_EXIST"
    assert error_code(lambda: client.dbfs.read("/files/blob.bin", length=2 * 1024 * 1024)) == "MAX_READ_SIZE_EXCEEDED"
    assert error_code(lambda: client.dbfs.create("/files/blob.bin")) == "RESOURCE_ALREADY_EXISTS"
    assert error_code(lambda: client.dbfs.add_block(handle=424242, data="")) == "RESOURCE_DOES_NOT_EXIST"
    # (databricks-sdk's own dbfs.delete refuses directories client-side: call the API)
    delete = {"path": "/files", "recursive": False}
    assert error_code(lambda: client.api_client.do("POST", "/api/2.0/dbfs/delete", body=delete)) == "IO_ERROR"

    handle = client.dbfs.create("/files/blob.bin", overwrite=True).handle
    client.dbfs.add_block(handle, base64.b64encode(b"new ").decode())
    client.dbfs.add_block(handle, base64.b64encode(b"content").decode())
    client.dbfs.close(handle)
    assert base64.b64decode(client.dbfs.read("/files/blob.bin").data) == b"new content"
    client.dbfs.delete("/files", recursive=True)
    assert not emulator.dbfs_local_path("/files").exists()


DRIVER_SCRIPT = """
import importlib.util, os, sys, time
assert __name__ == "__main__"
assert importlib.util.find_spec("adlfs") is None  # installed here, but not on the cluster
import six  # a library of the run
with open(sys.argv[1]) as fh:  # a /dbfs/ parameter, read through the driver's local filesystem
    print("parameter file:", fh.read())
print("secret:", dbutils.secrets.get(scope="%(scope)s", key="%(key)s") == "%(value)s")
print("lazy sc:", repr(sc))
from databricks.sdk import WorkspaceClient  # in the runtime; no credentials: the run's own
workspace = WorkspaceClient()
print("sdk:", workspace.config.auth_type, workspace.dbfs.get_status("/inputs/parameter.txt").file_size)
from databricks.sdk.runtime import dbutils as runtime_dbutils, spark as runtime_spark
print("runtime globals:", runtime_dbutils is dbutils, runtime_spark is spark)
sys.path.insert(0, %(tests_parent)r)  # the repository exists on this machine, not on the cluster
try:
    import netflix_assets_tests
except ModuleNotFoundError as e:
    print("repository:", e)
print("started", flush=True)
if sys.argv[2] == "sleep":
    time.sleep(120)
raise RuntimeError("the script failed on purpose")
"""


def test_driver_process_cancel_and_output(client, emulator):
    script = DRIVER_SCRIPT % {
        "scope": SECRET_SCOPE,
        "key": SECRET_KEY,
        "value": SECRET_VALUE,
        "tests_parent": str(TESTS_DIR.parent),
    }
    client.dbfs.put("/scripts/main.py", contents=base64.b64encode(script.encode()).decode(), overwrite=True)
    client.dbfs.put("/inputs/parameter.txt", contents=base64.b64encode(b"hello from DBFS").decode())

    def submit(mode: str) -> int:
        body = valid_submit()
        body["tasks"][0]["spark_python_task"]["parameters"] = ["/dbfs/inputs/parameter.txt", mode]
        return client.api_client.do("POST", "/api/2.2/jobs/runs/submit", body=body)["run_id"]

    # A failing run: the exception is the state message, and get-output has the error and the logs.
    failed = emulator.wait_for_run(submit("fail"), timeout=60)
    assert (failed.result_state, failed.state_message) == ("FAILED", "RuntimeError: the script failed on purpose")
    got = client.jobs.get_run(failed.run_id)
    assert got.state.life_cycle_state.value == "TERMINATED" and got.state.result_state.value == "FAILED"
    assert got.tasks[0].cluster_instance.cluster_id == DEFAULT_CLUSTER_ID
    assert got.run_page_url == f"{emulator.host}/?o=0#job/{failed.job_id}/run/{failed.run_id}"
    with pytest.raises(DatabricksError, match="multiple tasks"):
        client.jobs.get_run_output(failed.run_id)
    output = client.jobs.get_run_output(got.tasks[0].run_id)
    assert output.error == "RuntimeError: the script failed on purpose"
    assert "Traceback" in output.error_trace
    assert "parameter file: hello from DBFS" in output.logs
    assert "secret: True" in output.logs
    assert "lazy sc: <lazy Databricks runtime sc>" in output.logs
    assert "sdk: runtime 15" in output.logs
    assert "runtime globals: True True" in output.logs
    assert "repository: No module named 'netflix_assets_tests'" in output.logs
    assert not failed.spark_started

    # A cancelled run: the driver process is killed.
    sleeping = emulator.runs[submit("sleep")]
    deadline = time.monotonic() + 60
    while "started" not in sleeping.stdout() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert sleeping.life_cycle_state == "RUNNING"
    client.jobs.cancel_run(sleeping.run_id)
    emulator.wait_for_run(sleeping.run_id, timeout=30)
    assert (sleeping.life_cycle_state, sleeping.result_state) == ("TERMINATED", "CANCELED")
    assert sleeping.life_cycle_states[-2:] == ["TERMINATING", "TERMINATED"]
    with pytest.raises(ProcessLookupError):
        os.kill(sleeping.pid, 0)
