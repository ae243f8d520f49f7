"""The prod path end to end, without a cloud: silver/netflix_titles and its checks
materialized through dagster-databricks' real step launcher against the local
Databricks REST emulator, with the prod resources built from environment variables.

Bronze is built locally first (the emulated cluster and the test share the lake
directory, which stands in for the ADLS container: Spark here has no ABFS driver).
"""

import zipfile

import dagster as dg
import pytest
from deltalake import DeltaTable

from netflix_assets.definitions import lakehouse_job
from netflix_assets.resources.databricks import CLUSTER_LIBRARIES, DEFAULT_SECRET_SCOPE

from .databricks_emulator import DatabricksEmulator
from .lakehouse import bronze_titles_lake

SILVER = dg.AssetKey(["silver", "netflix_titles"])
QUARANTINE = dg.AssetKey(["quarantine", "netflix_titles"])
ACCOUNT_KEY = "ZW11bGF0ZWQtYWNjb3VudC1rZXk="


@pytest.fixture(scope="module")
def bronze_lake(tmp_path_factory, spark, lookup_server):
    return bronze_titles_lake(tmp_path_factory.mktemp("lake"), lookup_server)


@pytest.fixture
def emulator(tmp_path):
    secrets = {(DEFAULT_SECRET_SCOPE, "adls-account-key"): ACCOUNT_KEY}
    with DatabricksEmulator(tmp_path / "databricks", secrets=secrets) as emu:
        yield emu


@pytest.fixture
def prod_env(monkeypatch, emulator, bronze_lake, lookup_server):
    lake, _ = bronze_lake
    env = {
        "NETFLIX_DEPLOYMENT": "prod",
        "NETFLIX_LAKE_URI": str(lake.root),
        "NETFLIX_ADLS_ACCOUNT": "emulatedaccount",
        "NETFLIX_LOOKUP_BASE_URL": lookup_server,
        "DATABRICKS_HOST": emulator.host,
        "DATABRICKS_TOKEN": "dapi-emulated-token",
        "DATABRICKS_CLUSTER_ID": emulator.cluster_id,
        "DATABRICKS_POLL_INTERVAL_SECONDS": "0.5",
        "NETFLIX_MAX_CONCURRENT_STEPS": "2",
    }
    for name in ("NETFLIX_LANDING_URI", "NETFLIX_ADLS_ACCOUNT_KEY", "NETFLIX_CLUSTER_LIBRARIES"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


def _execute(tmp_path, day):
    # The multiprocess executor of prod needs a persistent instance.
    home = tmp_path / "dagster_home"
    home.mkdir()
    instance = dg.DagsterInstance.local_temp(str(home))
    result = dg.execute_job(
        dg.reconstructable(lakehouse_job),
        instance=instance,
        tags={"dagster/partition": day},
        asset_selection=[SILVER, QUARANTINE],
        raise_on_error=False,
    )
    return instance, result


def test_silver_and_its_checks_run_on_the_emulated_cluster(tmp_path, bronze_lake, emulator, prod_env):
    lake, day = bronze_lake
    instance, result = _execute(tmp_path, day)
    assert result.success, [e.message for e in result.all_events if e.is_failure]

    # The materialization and every check of silver/netflix_titles are in the local instance.
    event = instance.get_latest_materialization_event(SILVER)
    assert event is not None and event.run_id == result.run_id
    assert event.asset_materialization.partition == day
    assert event.asset_materialization.metadata["dagster/row_count"].value == 6232
    check_keys = [k for k in result.job_def.asset_layer.asset_graph.asset_check_keys if k.asset_key == SILVER]
    assert len(check_keys) == 6
    for key in check_keys:
        [execution] = instance.event_log_storage.get_asset_check_execution_history(key, limit=5)
        assert execution.run_id == result.run_id and execution.status.value == "SUCCEEDED", key

    # Written by the emulated cluster's Spark, read back without Spark.
    rows = DeltaTable(str(lake.root / "silver" / "netflix_titles")).to_pyarrow_table().to_pylist()
    assert sum(str(r["ingest_date"]) == day for r in rows) == 6232

    # One Databricks run per Spark step (the asset, then one step for its six checks), each as the launcher builds it.
    runs = list(emulator.runs.values())
    assert len(runs) == 2
    for run in runs:
        assert (run.life_cycle_state, run.result_state) == ("TERMINATED", "SUCCESS"), run.state_message
        [task] = run.submit_body["tasks"]
        assert task["existing_cluster_id"] == emulator.cluster_id
        assert task["spark_python_task"]["python_file"].endswith("databricks_step_main.py")
        packages = {lib["pypi"]["package"].split("==")[0] for lib in task["libraries"] if "pypi" in lib}
        assert {spec.split("==")[0] for spec in CLUSTER_LIBRARIES} | {"dagster", "dagster-databricks"} <= packages
    assert any(run.spark_started for run in runs)

    # The code went as a zip of the package sources (no .venv, no bundled data).
    [zip_path] = {emulator.dbfs_local_path(p) for p in _uploaded(emulator) if p.endswith("/silver_netflix_titles/code.zip")}
    names = zipfile.ZipFile(zip_path).namelist()
    assert "netflix_assets/silver/assets.py" in names
    assert not any(n.startswith((".venv", "netflix_assets/data/")) for n in names)

    # The ADLS key came from the secret scope, never through the request or the step config.
    assert not any(ACCOUNT_KEY in repr(r.body) for r in emulator.requests)


def _uploaded(emulator) -> list[str]:
    return [r.body["path"] for r in emulator.requests_to("dbfs/create", "POST")]


def test_a_library_missing_from_the_cluster_spec_fails_the_run(tmp_path, bronze_lake, emulator, prod_env, monkeypatch):
    # dagster-azure (the ADLS pickle IO manager) left out of the cluster libraries.
    kept = [spec for spec in CLUSTER_LIBRARIES if not spec.startswith("dagster-azure")]
    monkeypatch.setenv("NETFLIX_CLUSTER_LIBRARIES", ",".join(kept))
    _, day = bronze_lake
    _, result = _execute(tmp_path, day)
    assert not result.success
    [run] = emulator.runs.values()
    assert run.result_state == "FAILED"
    assert "dagster_azure" in run.state_message
    # The step fails with the cluster's error, as the launcher reports it from runs/get.
    [failure] = [e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE]
    assert failure.step_key == "silver_netflix_titles"
    assert "No module named 'dagster_azure'" in failure.step_failure_data.error.message
