"""The prod path end to end, without a cloud: silver/netflix_titles and its checks
materialized through dagster-databricks' real step launcher against the local
Databricks REST emulator, with the prod resources built from environment variables.

Bronze is built locally first (the emulated cluster and the test share the lake
directory, which stands in for the ADLS container: Spark here has no ABFS driver).
"""

import gzip
import zipfile
from pathlib import Path

import dagster as dg
import pytest
from deltalake import DeltaTable

from netflix_assets.definitions import build_lakehouse_job
from netflix_assets.resources.databricks import CLUSTER_LIBRARIES, DEFAULT_SECRET_SCOPE
from netflix_assets.resources.landing import LANDING_ENV

from netflix_assets_tests.databricks_emulator import DatabricksEmulator
from netflix_assets_tests.lakehouse import bronze_titles_lake

SILVER = dg.AssetKey(["silver", "netflix_titles"])
QUARANTINE = dg.AssetKey(["quarantine", "netflix_titles"])
ACCOUNT_KEY = "ZW11bGF0ZWQtYWNjb3VudC1rZXk="
# Every secret the Dagster process holds, as the secret scope holds it for the cluster
# (scope key -> (variable, value)): none may reach DBFS or a request body in clear.
SAS = "sv=2024-05-04&sp=r&sig=TOPSECRETLOOKUPSIGNATURE"
SECRETS = {
    "adls-account-key": ("NETFLIX_ADLS_ACCOUNT_KEY", ACCOUNT_KEY),
    "landing-account-key": (LANDING_ENV["account_key"], "bGFuZGluZy1hY2NvdW50LWtleS1zZWNyZXQ="),
    "landing-sas-token": (LANDING_ENV["sas_token"], "sv=2024&sig=LANDINGSASSECRETSIGNATURE"),
    "landing-connection-string": (LANDING_ENV["connection_string"], "AccountName=x;AccountKey=CONNSTRINGSECRETKEY"),
}


@pytest.fixture(scope="module")
def bronze_lake(tmp_path_factory, spark, lookup_server):
    return bronze_titles_lake(tmp_path_factory.mktemp("lake"), lookup_server)


@pytest.fixture
def lookup_url(lookup_server):
    """The lookup base URL with a SAS, as prod may have it (this test runs no pull)."""
    return f"{lookup_server}?{SAS}"


@pytest.fixture
def emulator(tmp_path, lookup_url):
    secrets = {(DEFAULT_SECRET_SCOPE, key): value for key, (_, value) in SECRETS.items()}
    secrets[(DEFAULT_SECRET_SCOPE, "lookup-base-url")] = lookup_url
    with DatabricksEmulator(tmp_path / "databricks", secrets=secrets) as emu:
        yield emu


@pytest.fixture
def prod_env(monkeypatch, emulator, bronze_lake, lookup_url):
    lake, _ = bronze_lake
    env = {
        "NETFLIX_DEPLOYMENT": "prod",
        "NETFLIX_LAKE_URI": str(lake.root),
        "NETFLIX_ADLS_ACCOUNT": "emulatedaccount",
        "NETFLIX_LOOKUP_BASE_URL": lookup_url,
        # A landing zone of its own, with every kind of credential set (a local folder
        # here, so none is used to open anything: only how each travels is tested).
        "NETFLIX_LANDING_URI": str(lake.root / "raw" / "netflix_titles"),
        **{var: value for var, value in SECRETS.values()},
        "DATABRICKS_HOST": emulator.host,
        "DATABRICKS_TOKEN": "dapi-emulated-token",
        "DATABRICKS_CLUSTER_ID": emulator.cluster_id,
        "DATABRICKS_POLL_INTERVAL_SECONDS": "0.5",
        "NETFLIX_MAX_CONCURRENT_STEPS": "2",
    }
    for name in ("NETFLIX_CLUSTER_LIBRARIES", "NETFLIX_ADLS_SAS_TOKEN"):
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
        dg.reconstructable(build_lakehouse_job),
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
    assert len(check_keys) == 8
    for key in check_keys:
        [execution] = instance.event_log_storage.get_asset_check_execution_history(key, limit=5)
        assert execution.run_id == result.run_id and execution.status.value == "SUCCEEDED", key

    # Written by the emulated cluster's Spark, read back without Spark.
    rows = DeltaTable(str(lake.root / "silver" / "netflix_titles")).to_pyarrow_table().to_pylist()
    assert sum(str(r["ingest_date"]) == day for r in rows) == 6232

    # One Databricks run per Spark step (the asset, then one step for its eight checks), each as the launcher builds it.
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

    # Every secret came from the secret scope, never through a request or the staged step files:
    # dagster-databricks pickles `env_variables` into config.pkl on DBFS, readable by whoever reads DBFS.
    secret_values = [value for _, value in SECRETS.values()] + [SAS, "TOPSECRETLOOKUPSIGNATURE"]
    for value in secret_values:
        assert not any(value in repr(r.body) for r in emulator.requests), value
    # DBFS (what the launcher uploads, what the step writes back) and the runs' driver logs; not the
    # emulator's own secret store (runs/<id>/secrets.json), which plays the scope.
    logs = [p for p in (emulator.root_dir / "runs").glob("*/*") if p.name in ("stdout", "stderr")]
    stored = list(_stored_bytes([*emulator.dbfs_root.rglob("*"), *logs]))
    assert any(name.endswith("config.pkl") for name, _ in stored)
    for name, data in stored:
        for value in secret_values:
            assert value.encode() not in data, f"a secret is stored in clear in {name}"
    # ...and the cluster did read each of them from the scope (the launcher's own log line).
    exported = b"".join(data for name, data in stored if name.endswith("stdout"))
    for key, (var, _) in [*SECRETS.items(), ("lookup-base-url", ("NETFLIX_LOOKUP_BASE_URL", None))]:
        assert f"Exporting {var} from Databricks secret {key}".encode() in exported, key


def _stored_bytes(paths: list[Path]):
    """(name, bytes) of each file of `paths`, zip members and gzip contents unpacked (the code
    zip, the pickled events)."""
    for path in sorted(p for p in paths if p.is_file()):
        data = path.read_bytes()
        yield str(path), data
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                for member in archive.namelist():
                    yield f"{path}!{member}", archive.read(member)
        elif data[:2] == b"\x1f\x8b":
            yield f"{path} (gunzipped)", gzip.decompress(data)


def _uploaded(emulator) -> list[str]:
    return [r.body["path"] for r in emulator.requests_to("dbfs/create", "POST")]


def test_without_deltalake_on_the_cluster_the_steps_fall_back_to_spark(tmp_path, bronze_lake, emulator, prod_env, monkeypatch):
    # The emulated cluster has only the runtime's and the listed libraries (a library missing from
    # the spec fails the run: test_databricks_emulator.py). delta-rs is the one the silver steps
    # import, and only for facts the Delta log answers faster (lib/delta.py): without it the
    # same facts come from Spark, so a failed install costs time, not correctness.
    kept = [spec for spec in CLUSTER_LIBRARIES if not spec.startswith("deltalake")]
    monkeypatch.setenv("NETFLIX_CLUSTER_LIBRARIES", ",".join(kept))
    _, day = bronze_lake
    instance, result = _execute(tmp_path, day)
    assert result.success, [e.message for e in result.all_events if e.is_failure]
    runs = list(emulator.runs.values())
    assert runs and all("deltalake" not in run.installed_distributions for run in runs)
    event = instance.get_latest_materialization_event(SILVER)
    assert event.asset_materialization.metadata["dagster/row_count"].value == 6232
