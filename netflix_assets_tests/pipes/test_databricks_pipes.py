"""silver/netflix_titles through Dagster Pipes against the local Databricks REST emulator: the
documented alternative to the step launcher, on an existing cluster (`PipesDatabricksClient`,
DBFS) and on serverless compute (`PipesDatabricksServerlessClient`, a volume, Spark Connect).

Bronze is built locally first, as in test_databricks_step_launcher.py (the emulated
cluster and the test share the lake directory, which stands in for ADLS).
"""

import dagster as dg
import pytest
from dagster_pipes import decode_param
from deltalake import DeltaTable

from netflix_assets.pipes.assets import (
    PIPES_VOLUME_ENV,
    SILVER_TITLES,
    WHEEL_NAME,
    pipes_databricks_resource,
    silver_titles_pipes_asset,
)
from netflix_assets.partitions import daily_partitions
from netflix_assets.pipes.silver_titles_task import CHECK_NAME

from netflix_assets_tests.databricks_emulator import DatabricksEmulator
from netflix_assets_tests.lakehouse import bronze_titles_lake

TOKEN = "dapi-emulated-token"


@pytest.fixture(scope="module")
def bronze_lake(tmp_path_factory, spark, lookup_server):
    return bronze_titles_lake(tmp_path_factory.mktemp("lake"), lookup_server)


@pytest.fixture
def emulator(tmp_path):
    with DatabricksEmulator(tmp_path / "databricks", token=TOKEN) as emu:
        yield emu


@pytest.fixture
def pipes_env(monkeypatch, emulator, bronze_lake):
    lake, _ = bronze_lake
    env = {
        "NETFLIX_LAKE_URI": str(lake.root),
        "DATABRICKS_HOST": emulator.host,
        "DATABRICKS_TOKEN": TOKEN,
        "DATABRICKS_CLUSTER_ID": emulator.cluster_id,
        "DATABRICKS_POLL_INTERVAL_SECONDS": "0.5",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


def test_silver_titles_through_pipes_on_the_emulated_cluster(bronze_lake, emulator, pipes_env):
    lake, day = bronze_lake
    result = dg.materialize(
        [silver_titles_pipes_asset()],
        partition_key=day,
        resources={"pipes_databricks": pipes_databricks_resource()},
        raise_on_error=False,
    )
    runs = list(emulator.runs.values())
    assert result.success, (
        [e.message for e in result.all_events if e.is_failure],
        [(r.state_message, r.stderr()[-3000:]) for r in runs],
    )

    # The materialization reported by the task through Pipes messages.
    [event] = result.get_asset_materialization_events()
    materialization = event.event_specific_data.materialization
    assert materialization.asset_key == SILVER_TITLES and materialization.partition == day
    assert materialization.metadata["dagster/row_count"].value == 6232
    assert materialization.metadata["delta_version"].value >= 0
    assert materialization.metadata["Databricks Job Run ID"].value == str(runs[0].run_id)

    # The check result the task reported, recorded as an evaluation of the declared check.
    [evaluation] = result.get_asset_check_evaluations()
    assert evaluation.asset_check_key == dg.AssetCheckKey(SILVER_TITLES, CHECK_NAME)
    assert evaluation.passed and evaluation.metadata["rows"].value == 6232

    # Written by the emulated cluster's Spark, read back without Spark.
    rows = DeltaTable(str(lake.root / "silver" / "netflix_titles")).to_pyarrow_table().to_pylist()
    assert sum(str(r["ingest_date"]) == day for r in rows) == 6232

    # One run on the existing cluster, the Pipes bootstrap params as CLI arguments; it ends by
    # itself if nothing cancels it, and a retried submit finds it again.
    [run] = runs
    assert (run.life_cycle_state, run.result_state) == ("TERMINATED", "SUCCESS"), run.state_message
    assert run.submit_body["timeout_seconds"] == 3600
    assert run.submit_body["idempotency_token"] == f"{result.run_id}-{day}-0"
    assert run.spark_started
    [task] = run.submit_body["tasks"]
    assert task["existing_cluster_id"] == emulator.cluster_id
    assert task["spark_python_task"]["python_file"].endswith("/silver_titles_task.py")
    assert any(lib.get("whl", "").endswith(f"/{WHEEL_NAME}-0.1.0-py3-none-any.whl") for lib in task["libraries"])
    assert "dagster-pipes" in {lib["pypi"]["package"].split("==")[0] for lib in task["libraries"] if "pypi" in lib}
    params = task["spark_python_task"]["parameters"]
    context_params = decode_param(params[params.index("--dagster-pipes-context") + 1])
    messages_params = decode_param(params[params.index("--dagster-pipes-messages") + 1])

    # The context went to DBFS with the API; the driver read it through /dbfs.
    [put] = [r for r in emulator.requests_to("dbfs/put", "POST") if r.body["path"] == context_params["path"]]
    assert put.body["path"].endswith("/context.json")

    # The messages came back through the DBFS API: chunks the driver wrote under /dbfs.
    messages_dir = messages_params["path"]
    reads = [r for r in emulator.requests_to("dbfs/read", "GET") if r.query["path"].startswith(messages_dir + "/")]
    assert any(r.status == 200 and r.query["path"] == f"{messages_dir}/1.json" for r in reads)

    # Both temp dirs were removed afterwards (recursive DBFS delete).
    deleted = {r.body["path"] for r in emulator.requests_to("dbfs/delete", "POST") if r.body.get("recursive")}
    assert {context_params["path"].rsplit("/", 1)[0], messages_dir} <= deleted
    assert not emulator.dbfs_local_path(messages_dir).exists()

    # The driver's process never saw the test environment's Dagster.
    assert "dagster" not in run.installed_distributions


def test_the_driver_sees_dbfs_under_slash_dbfs(emulator):
    """The emulated FUSE mount: a task's Python file APIs reach DBFS at /dbfs (no Spark here)."""
    import base64
    import textwrap

    from databricks.sdk import WorkspaceClient
    from databricks.sdk.service import jobs

    client = WorkspaceClient(host=emulator.host, token=TOKEN)
    script = textwrap.dedent(
        """
        import json, os, pathlib, shutil
        with open("/dbfs/in/context.json") as fh:
            context = json.load(fh)
        os.makedirs("/dbfs/out/chunks", exist_ok=True)
        pathlib.Path("/dbfs/out/chunks/1.json").write_text(json.dumps({"seen": context["n"] + 1}))
        assert os.path.isfile("/dbfs/out/chunks/1.json") and os.listdir("/dbfs/out") == ["chunks"]
        shutil.rmtree("/dbfs/in")
        """
    )
    for path, data in (("/scripts/fuse.py", script.encode()), ("/in/context.json", b'{"n": 41}')):
        client.dbfs.put(path, contents=base64.b64encode(data).decode())
    task = {
        "task_key": "fuse",
        "existing_cluster_id": emulator.cluster_id,
        "spark_python_task": {"python_file": "dbfs:/scripts/fuse.py"},
    }
    run_id = client.jobs.submit(tasks=[jobs.SubmitTask.from_dict(task)]).run_id
    run = emulator.wait_for_run(run_id)
    assert run.result_state == "SUCCESS", (run.state_message, run.stderr())
    assert base64.b64decode(client.dbfs.read("/out/chunks/1.json").data) == b'{"seen": 42}'
    assert not emulator.dbfs_local_path("/in").exists() and not run.spark_started


VOLUME = "/Volumes/main/netflix/pipes"


@pytest.fixture
def serverless(tmp_path, connect_url):
    with DatabricksEmulator(tmp_path / "databricks", token=TOKEN, serverless_remote=connect_url) as emu:
        yield emu


def test_silver_titles_on_emulated_serverless_needs_nothing_but_spark_connect(bronze_lake, serverless, monkeypatch):
    """Serverless compute: no cluster, no DBFS, no JVM in the driver. The code, the Pipes context
    and the messages travel through a Unity Catalog volume, and the task's `spark` is a client of
    a local Spark Connect server: a py4j call anywhere on the path would fail the run."""
    lake, day = bronze_lake
    for name, value in {
        "NETFLIX_LAKE_URI": str(lake.root), "DATABRICKS_HOST": serverless.host, "DATABRICKS_TOKEN": TOKEN,
        PIPES_VOLUME_ENV: VOLUME, "DATABRICKS_POLL_INTERVAL_SECONDS": "0.5",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("DATABRICKS_CLUSTER_ID", raising=False)
    before = DeltaTable(str(lake.root / "silver" / "netflix_titles")).version() if (lake.root / "silver").exists() else -1

    # Twice with one client, as a step retried in its process would: each run reads its own messages.
    pipes = pipes_databricks_resource()
    for attempt in range(2):
        result = dg.materialize(
            [silver_titles_pipes_asset()], partition_key=day, resources={"pipes_databricks": pipes}, raise_on_error=False,
        )
        runs = list(serverless.runs.values())
        assert result.success, (
            attempt, [e.message for e in result.all_events if e.is_failure],
            [(r.state_message, r.stderr()[-3000:]) for r in runs],
        )
        [event] = result.get_asset_materialization_events()
        metadata = event.event_specific_data.materialization.metadata
        assert metadata["dagster/row_count"].value == 6232 and metadata["delta_version"].value > before, attempt
        before = metadata["delta_version"].value
    run = runs[-1]
    assert run.spark_session_module == "pyspark.sql.connect.session"
    [evaluation] = result.get_asset_check_evaluations()
    assert evaluation.passed and evaluation.metadata["rows"].value == 6232
    # Written through Connect, read back by delta-rs: plain types only.
    rows = DeltaTable(str(lake.root / "silver" / "netflix_titles")).to_pyarrow_table().to_pylist()
    assert sum(str(r["ingest_date"]) == day for r in rows) == 6232

    # A serverless task: an environment instead of a cluster and its libraries, all on the volume.
    [task] = run.submit_body["tasks"]
    assert "existing_cluster_id" not in task and "libraries" not in task
    [environment] = run.submit_body["environments"]
    assert environment["environment_key"] == task["environment_key"]
    dependencies = environment["spec"]["dependencies"]
    assert dependencies[0].startswith("dagster-pipes==")
    assert dependencies[1].startswith(f"{VOLUME}/code/") and dependencies[1].endswith(f"/{WHEEL_NAME}-0.1.0-py3-none-any.whl")
    assert task["spark_python_task"]["python_file"].startswith(f"{VOLUME}/code/")
    params = task["spark_python_task"]["parameters"]
    context_path = decode_param(params[params.index("--dagster-pipes-context") + 1])["path"]
    messages_dir = decode_param(params[params.index("--dagster-pipes-messages") + 1])["path"]
    assert context_path.startswith(f"{VOLUME}/tmp/") and messages_dir.startswith(f"{VOLUME}/tmp/")
    # The code was uploaded once: the second run found it at its content-addressed path.
    code_uploads = [r for r in serverless.requests if r.method == "PUT" and r.path.startswith(f"/api/2.0/fs/files{VOLUME}/code/")]
    assert len(code_uploads) == 2, [r.path for r in code_uploads]
    # Messages came back through the Files API, and both temp dirs were removed.
    downloads = [r for r in serverless.requests if r.method == "GET" and r.path == f"/api/2.0/fs/files{messages_dir}/1.json"]
    assert any(r.status == 200 for r in downloads)
    assert list(serverless.volume_local_path(f"{VOLUME}/tmp").iterdir()) == []
    assert "dagster" not in run.installed_distributions


def test_a_serverless_driver_sees_volumes_and_has_no_spark_context(tmp_path):
    """The emulated serverless runtime (no Spark here): files through the Files API and the
    driver's /Volumes mount, no `sc`, no /dbfs; a workspace without serverless refuses the task."""
    import io
    import textwrap

    from databricks.sdk import WorkspaceClient
    from databricks.sdk.errors import InvalidParameterValue
    from databricks.sdk.service import compute, files, jobs

    script = textwrap.dedent(
        f"""
        import os, pathlib
        assert "sc" not in globals() and not os.path.exists("/dbfs/anything")
        n = int(pathlib.Path("{VOLUME}/in/n.txt").read_text())
        os.makedirs("{VOLUME}/out", exist_ok=True)
        pathlib.Path("{VOLUME}/out/n.txt").write_text(str(n + 1))
        """
    )
    task = jobs.SubmitTask.from_dict(
        {"task_key": "fuse", "environment_key": "e", "spark_python_task": {"python_file": f"{VOLUME}/s.py"}}
    )
    environments = [jobs.JobEnvironment(environment_key="e", spec=compute.Environment(environment_version="3"))]
    with DatabricksEmulator(tmp_path / "off", token=TOKEN) as emu:
        with pytest.raises(InvalidParameterValue, match="Serverless compute is not enabled"):
            WorkspaceClient(host=emu.host, token=TOKEN).jobs.submit(tasks=[task], environments=environments)
    with DatabricksEmulator(tmp_path / "on", token=TOKEN, serverless_remote="sc://127.0.0.1:1") as emu:
        client = WorkspaceClient(host=emu.host, token=TOKEN)
        volume = files.FilesAPI(client.api_client)
        volume.upload(f"{VOLUME}/s.py", io.BytesIO(script.encode()), overwrite=True)
        volume.upload(f"{VOLUME}/in/n.txt", io.BytesIO(b"41"), overwrite=True)
        run = emu.wait_for_run(client.jobs.submit(tasks=[task], environments=environments).run_id)
        assert run.result_state == "SUCCESS", (run.state_message, run.stderr())
        assert volume.download(f"{VOLUME}/out/n.txt").contents.read() == b"42"
        assert [e.name for e in volume.list_directory_contents(f"{VOLUME}/out")] == ["n.txt"]
        assert not run.spark_started


def _fake_workspace(on_submit, get_run):
    """A Databricks workspace in memory: `on_submit(task)` plays the task, `get_run(polls)` answers a poll."""
    class Jobs:
        polls, cancelled = 0, []

        def submit(self, tasks, **kwargs):
            on_submit(tasks[0])
            return type("Waiter", (), {"bind": lambda self: {"run_id": 7}})()

        def get_run(self, run_id):
            Jobs.polls += 1
            return get_run(Jobs.polls)

        def cancel_run(self, run_id):
            Jobs.cancelled.append(run_id)

    class Dbfs:
        def get_status(self, path):
            from databricks.sdk.errors import NotFound

            raise NotFound(path)

        def upload(self, *args, **kwargs):
            pass

    return type("Workspace", (), {"jobs": Jobs(), "dbfs": Dbfs()})()


def _materialize_on(workspace):
    from dagster._core.pipes.utils import PipesEnvContextInjector, PipesTempFileMessageReader
    from dagster_databricks.pipes import PipesDatabricksClient

    pipes = PipesDatabricksClient(client=workspace, context_injector=PipesEnvContextInjector(),
                                  message_reader=PipesTempFileMessageReader(), poll_interval_seconds=0.01)
    return dg.materialize([silver_titles_pipes_asset(lake_uri="/nowhere", cluster_id="c")],
                          partition_key=daily_partitions.get_partition_keys()[0],
                          resources={"pipes_databricks": pipes}, raise_on_error=False)


def _ended(result_state):
    from databricks.sdk.service import jobs

    return jobs.Run(state=jobs.RunState(life_cycle_state=jobs.RunLifeCycleState.TERMINATED, result_state=result_state),
                    run_page_url="http://run/7")


def test_a_cancelled_databricks_run_records_no_materialization():
    """The UI's Terminate (or run monitoring's maximum runtime) arrives while the step polls:
    dagster-databricks cancels the Databricks run and returns normally. The step fails, naming the
    run, and the partition is not recorded as materialized (no Spark, no emulator)."""
    from dagster._core.errors import DagsterExecutionInterruptedError
    from databricks.sdk.service import jobs

    def get_run(polls):
        if polls == 1:
            raise DagsterExecutionInterruptedError()
        return _ended(jobs.RunResultState.CANCELED)

    workspace = _fake_workspace(lambda task: None, get_run)
    result = _materialize_on(workspace)
    assert workspace.jobs.cancelled == [7]
    assert not result.success and result.get_asset_materialization_events() == []
    [failure] = [e for e in result.all_events if e.is_step_failure]
    assert "The Databricks run 7 reported no materialization of silver/netflix_titles" in str(failure.step_failure_data.error)


def test_a_duplicated_show_id_reported_by_the_task_blocks_what_follows():
    """The task's key check is blocking, as the step launcher deployment's: its failure fails the step
    (gold waits), with the materialization the task committed still recorded."""
    import json

    from databricks.sdk.service import jobs

    def on_submit(task):
        params = task.spark_python_task.parameters
        path = decode_param(params[params.index("--dagster-pipes-messages") + 1])["path"]
        messages = [("opened", {}),
                    ("report_asset_materialization", {"asset_key": "silver/netflix_titles", "metadata": {}, "data_version": None}),
                    ("report_asset_check", {"asset_key": "silver/netflix_titles", "check_name": CHECK_NAME, "passed": False,
                                            "severity": "ERROR", "metadata": {}}),
                    ("closed", {})]
        with open(path, "a") as out:
            for method, params_ in messages:
                out.write(json.dumps({"__dagster_pipes_version": "0.1", "method": method, "params": params_}) + "\n")

    result = _materialize_on(_fake_workspace(on_submit, lambda polls: _ended(jobs.RunResultState.SUCCESS)))
    [evaluation] = result.get_asset_check_evaluations()
    assert not evaluation.passed and evaluation.blocking
    assert len(result.get_asset_materialization_events()) == 1 and not result.success


def test_staged_code_is_uploaded_once_per_content_and_again_when_a_part_written_copy_is_there(tmp_path):
    """Two runs of different days stage the same content-addressed code: the second finds it and
    rewrites nothing another run's compute may be installing; a copy of another size (an upload that
    died part-way) is written again. DBFS and a volume alike (no Spark: the emulator's APIs only)."""
    from databricks.sdk import WorkspaceClient

    from netflix_assets.pipes.assets import _upload

    with DatabricksEmulator(tmp_path / "databricks", token=TOKEN, serverless_remote="sc://127.0.0.1:1") as emu:
        client = WorkspaceClient(host=emu.host, token=TOKEN)
        for path in (f"{VOLUME}/code/abc/task.py", "dbfs:/netflix-lakehouse/pipes/abc/task.py"):
            for data in (b"print(1)\n", b"print(1)\n", b"print(1)\n" + b"#" * 7):
                _upload(client, path, data)
        writes = [r.path.rsplit("/", 1)[-1] if "fs/files" in r.path else r.path for r in emu.requests
                  if (r.method, r.path.startswith("/api/2.0/fs/files")) == ("PUT", True) or r.path == "/api/2.0/dbfs/create"]
        assert writes == ["task.py", "task.py", "/api/2.0/dbfs/create", "/api/2.0/dbfs/create"]
        assert emu.volume_local_path(f"{VOLUME}/code/abc/task.py").read_bytes().endswith(b"#######")
