"""The prod deployment, built from environment variables with no network:
Databricks step launcher on every Spark step, Delta and JSON IO managers on ADLS,
no secret in config or in what the launcher stores in clear; and the local instance."""

import os
import pickle
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import dagster as dg
import pytest
from dagster_databricks.databricks_pyspark_step_launcher import DatabricksPySparkStepLauncher

from netflix_assets.definitions import build_definitions
from netflix_assets.deployments import local_resources, resources_for
from netflix_assets.io_managers.delta import SparkDeltaIOManager
from netflix_assets.io_managers.json_records import JSON_IO_MANAGER_KEY, JsonRecordsIOManager
from netflix_assets.later_days import LATER_DAYS_TAG
from netflix_assets.resources.databricks import (
    CLUSTER_LIBRARIES,
    CLUSTER_SECRETS,
    STEP_LAUNCHER_KEY,
    staged_code_dir,
    step_launcher_config,
)
from netflix_assets.resources.landing import LANDING_ENV
from netflix_assets.transforms.formats import LOOKUPS

SECRETS = {"DATABRICKS_TOKEN": "dapi-not-a-real-token", "NETFLIX_ADLS_ACCOUNT_KEY": "bm90LWEtcmVhbC1rZXk="}
PROD_ENV = {
    "NETFLIX_DEPLOYMENT": "prod",
    "NETFLIX_ADLS_ACCOUNT": "netflixlake",
    "NETFLIX_LOOKUP_BASE_URL": "https://raw.githubusercontent.com/example/netflix/main/data",
    "DATABRICKS_HOST": "https://adb-1234567890123456.7.azuredatabricks.net",
    "DATABRICKS_CLUSTER_ID": "0101-120000-abcdefgh",
    **SECRETS,
}


@pytest.fixture
def prod_env(monkeypatch):
    for name in ("NETFLIX_LAKE_URI", "NETFLIX_LANDING_URI", "NETFLIX_ADLS_CONTAINER", "NETFLIX_ADLS_PREFIX"):
        monkeypatch.delenv(name, raising=False)
    for name, value in PROD_ENV.items():
        monkeypatch.setenv(name, value)
    return PROD_ENV


def _spark_steps(defs: dg.Definitions):
    """(name, required resource keys) of every op that reads or writes Spark/Delta."""
    graph = defs.resolve_asset_graph()
    for assets_def in defs.assets:
        if not isinstance(assets_def, dg.AssetsDefinition) or not assets_def.is_executable:
            continue
        io_keys = {graph.get(k).io_manager_key for k in assets_def.keys}
        if "delta_io_manager" in io_keys:
            yield assets_def.node_def.name, assets_def.node_def.required_resource_keys
    for checks_def in defs.asset_checks:
        yield checks_def.node_def.name, checks_def.node_def.required_resource_keys


def test_every_spark_step_requires_the_step_launcher_key():
    defs = build_definitions()
    steps = dict(_spark_steps(defs))
    assert len(steps) > 40  # 20+ table assets and 40 checks
    missing = sorted(name for name, keys in steps.items() if STEP_LAUNCHER_KEY not in keys)
    assert missing == []


def test_prod_resources_are_databricks_and_adls(prod_env):
    resources = resources_for("prod")
    lake = resources["lake"]
    assert lake.root_uri == "abfss://lakehouse@netflixlake.dfs.core.windows.net/netflix"
    assert lake.account_key == dg.EnvVar("NETFLIX_ADLS_ACCOUNT_KEY")
    assert isinstance(resources["delta_io_manager"], SparkDeltaIOManager)
    assert resources["delta_io_manager"].lake.root_uri.startswith("abfss://")
    assert isinstance(resources[JSON_IO_MANAGER_KEY], JsonRecordsIOManager)
    assert resources[JSON_IO_MANAGER_KEY].uri_for(dg.AssetKey(["raw", "netflix_cast"]), "2024-01-02") == (
        "abfss://lakehouse@netflixlake.dfs.core.windows.net/netflix/_dagster_io/raw/netflix_cast/2024-01-02.json"
    )
    assert "pickle_io_manager" not in resources
    assert resources["landing"].uri == "abfss://lakehouse@netflixlake.dfs.core.windows.net/netflix/raw/netflix_titles"
    assert resources["spark"].use_active_session

    # The launcher really initializes (no network needed) into dagster-databricks' own class.
    with dg.build_resources({STEP_LAUNCHER_KEY: resources[STEP_LAUNCHER_KEY]}) as built:
        launcher = getattr(built, STEP_LAUNCHER_KEY)
    assert isinstance(launcher, DatabricksPySparkStepLauncher)
    assert launcher.run_config["cluster"] == {"existing": "0101-120000-abcdefgh"}
    packages = {lib["pypi"]["package"] for lib in launcher.run_config["libraries"]}
    assert set(CLUSTER_LIBRARIES) <= packages
    assert launcher.env_variables["NETFLIX_DEPLOYMENT"] == "prod"
    assert "NETFLIX_LOOKUP_BASE_URL" not in launcher.env_variables
    assert {(s["key"], s["name"]) for s in launcher.secrets} == {
        ("adls-account-key", "NETFLIX_ADLS_ACCOUNT_KEY"),
        ("lookup-base-url", "NETFLIX_LOOKUP_BASE_URL"),
    }
    assert launcher.storage["adls2"]["storage_account_name"] == "netflixlake"


def test_prod_config_holds_variable_names_never_secret_values(prod_env):
    resources = resources_for("prod")
    launcher_config = resources[STEP_LAUNCHER_KEY].config_schema  # configured(): the schema holds defaults
    dumped = repr(launcher_config) + repr({k: v for k, v in resources.items() if k != STEP_LAUNCHER_KEY})
    for value in SECRETS.values():
        assert value not in dumped


def test_a_spark_connect_token_is_never_stored_with_a_run(monkeypatch):
    # A Databricks Connect URL holds its token: as a plain value it was in every run's job snapshot
    # (the run storage) and on the UI's Resources page.
    from dagster._core.snap import JobSnap
    from dagster._serdes import serialize_value

    from netflix_assets.resources.spark import REMOTE_ENV

    remote = "sc://adb-1.azuredatabricks.net:443/;token=dapiNOTAREALTOKEN;x-databricks-cluster-id=c1"
    monkeypatch.setenv(REMOTE_ENV, remote)
    resources = local_resources()
    job = build_definitions(resources).resolve_job_def("lakehouse_job")
    assert "dapiNOTAREALTOKEN" not in serialize_value(JobSnap.from_job_def(job))
    assert "dapiNOTAREALTOKEN" not in repr(resources["spark"])
    with dg.build_resources({"spark": resources["spark"]}) as built:
        assert built.spark.remote == remote  # what a run's session connects to


def test_no_resource_shows_a_secret_in_its_repr(prod_env, monkeypatch):
    # A log line or an error message formatting a resource (f"{lake}") must not print its key.
    monkeypatch.setenv("NETFLIX_LOOKUP_BASE_URL", "https://lookups.example/x?sv=1&sig=LOOKUPSIGNATURE")
    monkeypatch.setenv("NETFLIX_LANDING_URI", "abfss://landing@landacct.dfs.core.windows.net/titles")
    monkeypatch.setenv(LANDING_ENV["account_name"], "landacct")
    monkeypatch.setenv(LANDING_ENV["connection_string"], "AccountName=land;AccountKey=CONNSTRINGKEY")
    resources = resources_for("prod")
    names = ("lake", "landing", "http_source")
    with dg.build_resources({name: resources[name] for name in names}) as built:
        shown = " ".join(repr(getattr(built, name)) + f"{getattr(built, name)}" for name in names)
        assert built.lake.account_key == SECRETS["NETFLIX_ADLS_ACCOUNT_KEY"]  # resolved, and hidden:
    for secret in (SECRETS["NETFLIX_ADLS_ACCOUNT_KEY"], "LOOKUPSIGNATURE", "CONNSTRINGKEY"):
        assert secret not in shown, shown


# Every secret the cluster may need, set in the Dagster process's environment.
CLUSTER_SECRET_VALUES = {
    "NETFLIX_ADLS_ACCOUNT_KEY": "bm90LWEtcmVhbC1rZXk=",
    "NETFLIX_LOOKUP_BASE_URL": "https://lookups.blob.core.windows.net/netflix?sv=2024&sig=LOOKUPSIGNATURE",
    LANDING_ENV["account_key"]: "TEFORElORy1LRVktU0VDUkVU",
    LANDING_ENV["sas_token"]: "sv=2024&sig=LANDINGSIGNATURE",
    LANDING_ENV["connection_string"]: "DefaultEndpointsProtocol=https;AccountName=land;AccountKey=CONNSTRINGKEY",
    "AZURE_CLIENT_SECRET": "c3AtY2xpZW50LXNlY3JldA==",
}


def test_cluster_secrets_come_from_the_scope_never_in_clear(prod_env, monkeypatch):
    monkeypatch.setenv("NETFLIX_LANDING_URI", "abfss://landing@landacct.dfs.core.windows.net/titles")
    monkeypatch.setenv(LANDING_ENV["account_name"], "landacct")
    monkeypatch.setenv(LANDING_ENV["blob_endpoint"], "https://landacct.blob.core.windows.net")
    monkeypatch.setenv("NETFLIX_ADLS_SAS_TOKEN", "sv=2024&sig=LAKESASSIGNATURE")
    for name, value in CLUSTER_SECRET_VALUES.items():
        monkeypatch.setenv(name, value)
    secret_values = [*CLUSTER_SECRET_VALUES.values(), *SECRETS.values(), "LAKESASSIGNATURE"]

    config = step_launcher_config()
    # Non-secret settings only: names, URIs without credentials, endpoints.
    assert config["env_variables"]["NETFLIX_LANDING_URI"] == "abfss://landing@landacct.dfs.core.windows.net/titles"
    assert config["env_variables"][LANDING_ENV["account_name"]] == "landacct"
    assert config["env_variables"][LANDING_ENV["blob_endpoint"]] == "https://landacct.blob.core.windows.net"
    dumped = repr(config)
    for value in secret_values:
        assert value not in dumped
        assert not any(value in v for v in config["env_variables"].values())
    # Each secret the Dagster process has is read on the cluster from the scope, by its documented key.
    assert {(s["key"], s["name"], s["scope"]) for s in config["secrets_to_env_variables"]} == {
        (key, var, "netflix-lakehouse") for key, var in CLUSTER_SECRETS.items()
    }

    # What the launcher pickles to DBFS staging (config.pkl) holds names, never values.
    from dagster_databricks import databricks_pyspark_step_launcher

    with dg.build_resources({STEP_LAUNCHER_KEY: databricks_pyspark_step_launcher.configured(config)}) as built:
        staged = pickle.dumps(getattr(built, STEP_LAUNCHER_KEY).create_remote_config())
    assert b"lookup-base-url" in staged and b"NETFLIX_LOOKUP_BASE_URL" in staged
    for value in secret_values:
        assert value.encode() not in staged


def test_only_the_secrets_in_use_are_read_from_the_scope(prod_env, monkeypatch):
    for name in CLUSTER_SECRET_VALUES:
        monkeypatch.delenv(name, raising=False)
    keys = {s["key"] for s in step_launcher_config()["secrets_to_env_variables"]}
    assert keys == {"adls-account-key"}  # Spark's storage.adls2 reads it in any case


def test_standard_access_mode_sets_no_key_through_the_jvm(prod_env, monkeypatch):
    """NETFLIX_LAKE_AUTH=cluster: the compute's own access (a Unity Catalog external location):
    no `storage.adls2` (the launcher's `sc._jsc` call), no account key read from the scope; the
    step's Python readers get a service principal instead, its secret from the scope."""
    monkeypatch.setenv("NETFLIX_LAKE_AUTH", "cluster")
    monkeypatch.delenv("NETFLIX_ADLS_ACCOUNT_KEY", raising=False)
    for name, value in {"AZURE_CLIENT_ID": "sp-app-id", "AZURE_TENANT_ID": "tenant-id", "AZURE_CLIENT_SECRET": "sp-secret"}.items():
        monkeypatch.setenv(name, value)
    config = step_launcher_config()
    assert "storage" not in config
    assert {(s["key"], s["name"]) for s in config["secrets_to_env_variables"]} >= {("azure-client-secret", "AZURE_CLIENT_SECRET")}
    assert "adls-account-key" not in {s["key"] for s in config["secrets_to_env_variables"]}
    assert config["env_variables"]["AZURE_CLIENT_ID"] == "sp-app-id" and "sp-secret" not in repr(config)
    monkeypatch.setenv("NETFLIX_LAKE_AUTH", "sas")
    with pytest.raises(ValueError, match="NETFLIX_LAKE_AUTH='sas'"):
        step_launcher_config()


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("NETFLIX_LAKE_URI", "abfss://lake@acct.dfs.core.windows.net/netflix?sv=2024&sig=LEAKED"),
        ("NETFLIX_LANDING_URI", "https://user:LEAKED@landing.example.com/titles"),
        (LANDING_ENV["blob_endpoint"], "https://acct.blob.core.windows.net/?sig=LEAKED"),
    ],
)
def test_a_forwarded_setting_holding_a_credential_is_refused(prod_env, monkeypatch, name, value):
    monkeypatch.setenv(name, value)
    with pytest.raises(ValueError, match=f"{name} is forwarded to the Databricks cluster in clear") as caught:
        step_launcher_config()
    assert "LEAKED" not in str(caught.value)


def test_a_secret_passed_as_an_env_variable_is_refused(prod_env):
    with pytest.raises(ValueError, match="NETFLIX_LOOKUP_BASE_URL is a secret"):
        step_launcher_config(env={"NETFLIX_LOOKUP_BASE_URL": "https://example.com/data"})


def test_local_pull_records_go_through_the_json_io_manager(tmp_path):
    resources = local_resources(lake_uri=str(tmp_path))
    assert isinstance(resources[JSON_IO_MANAGER_KEY], JsonRecordsIOManager)
    assert "pickle_io_manager" not in resources
    graph = build_definitions(resources).resolve_asset_graph()
    for dataset in LOOKUPS:
        assert graph.get(dg.AssetKey(["raw", dataset])).io_manager_key == JSON_IO_MANAGER_KEY
    # No output goes through a pickle IO manager (Dagster's default `io_manager` is one).
    io_keys = {graph.get(key).io_manager_key for key in graph.materializable_asset_keys}
    assert io_keys == {"delta_io_manager", JSON_IO_MANAGER_KEY}


LOCAL_YAML = Path(__file__).resolve().parent.parent / "deploy" / "local" / "dagster.yaml"


def test_local_instance_monitors_runs(tmp_path):
    # A run whose worker dies stays STARTED until run monitoring (the daemon) ends it.
    shutil.copy(LOCAL_YAML, tmp_path / "dagster.yaml")
    with dg.DagsterInstance.from_config(str(tmp_path)) as instance:
        assert instance.run_monitoring_enabled
        assert instance.run_monitoring_start_timeout_seconds == 180
        assert instance.run_monitoring_max_runtime_seconds == 3600
        assert instance.run_monitoring_poll_interval_seconds == 60
        assert instance.run_monitoring_cancel_timeout_seconds == 180


def test_prod_job_runs_steps_in_parallel_processes_through_the_launcher(prod_env):
    defs = build_definitions(resources_for("prod"))
    from netflix_assets.deployments import executor_for

    job = dg.Definitions(
        assets=defs.assets, asset_checks=defs.asset_checks, jobs=defs.jobs, resources=resources_for("prod"),
        executor=executor_for("prod"),
    ).resolve_job_def("lakehouse_job")
    assert job.executor_def.name == dg.multiprocess_executor.name


def test_missing_prod_settings_fail_with_the_variable_name(prod_env, monkeypatch):
    monkeypatch.delenv("DATABRICKS_HOST")
    with pytest.raises(ValueError, match="DATABRICKS_HOST"):
        resources_for("prod")
    monkeypatch.setenv("DATABRICKS_HOST", PROD_ENV["DATABRICKS_HOST"])
    monkeypatch.delenv("NETFLIX_ADLS_ACCOUNT")
    with pytest.raises(ValueError, match="NETFLIX_ADLS_ACCOUNT"):
        resources_for("prod")


def test_new_job_cluster_and_staging_prefix(prod_env, monkeypatch):
    monkeypatch.delenv("DATABRICKS_CLUSTER_ID")
    resources = resources_for("staging")
    assert resources["lake"].root_uri.endswith("/staging")
    with dg.build_resources({STEP_LAUNCHER_KEY: resources[STEP_LAUNCHER_KEY]}) as built:
        cluster = getattr(built, STEP_LAUNCHER_KEY).run_config["cluster"]["new"]
    assert cluster["spark_version"].startswith("17.")
    assert cluster["size"] == {"num_workers": 2}


def test_shipped_code_is_the_package_sources_only():
    root = staged_code_dir()
    shipped = {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}
    assert "netflix_assets/definitions.py" in shipped
    assert not any(p.startswith(("netflix_assets/data/", ".venv")) or "__pycache__" in p for p in shipped)
    assert staged_code_dir() == root  # same sources, same directory: nothing re-copied


def test_shipped_code_is_never_taken_from_a_folder_others_may_write(tmp_path, monkeypatch):
    # The copy's name is predictable from public sources: one planted in a shared temp directory
    # was zipped and run on the cluster with the workspace's secrets.
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    shared = tmp_path / f"netflix-lakehouse-code-{os.getuid()}"
    shared.mkdir(mode=0o777)
    shared.chmod(0o777)
    with pytest.raises(RuntimeError, match="closed to others"):
        staged_code_dir()
    shared.chmod(0o700)
    root = staged_code_dir()
    assert root.parent == shared and (root / "netflix_assets" / "definitions.py").exists()


def test_definitions_validate_with_prod_variables_and_no_network(prod_env):
    env = {**os.environ, **prod_env, "NETFLIX_DEPLOYMENT": "prod"}
    # No proxy, no route: anything trying the network at load time would fail or hang.
    env.update({"HTTPS_PROXY": "http://127.0.0.1:9", "HTTP_PROXY": "http://127.0.0.1:9", "NO_PROXY": ""})
    done = subprocess.run(
        [sys.executable, "-m", "dagster", "definitions", "validate", "-m", "netflix_assets.definitions"],
        capture_output=True, text=True, env=env, timeout=120,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-3000:]
    assert "Validation successful" in output
    for value in SECRETS.values():
        assert value not in output


PROD_YAML = LOCAL_YAML.parent.parent / "prod" / "dagster.yaml"
PER_DAY_LIMIT = [{"key": "dagster/partition", "value": {"applyLimitPerUniqueValue": True}, "limit": 1},
                 {"key": LATER_DAYS_TAG, "limit": 1}]


@pytest.mark.parametrize("yaml_path", [LOCAL_YAML, PROD_YAML], ids=["local", "prod"])
def test_runs_of_one_day_are_queued_one_at_a_time(yaml_path, tmp_path, monkeypatch):
    # Runs of the same day rewrite the same Delta partitions: locally as in prod, the queued run
    # coordinator's daemon starts one run per `dagster/partition` value at a time (and one rebuild
    # of later days at a time).
    from dagster._core.instance.config import dagster_instance_config
    from dagster._core.run_coordinator import QueuedRunCoordinator
    from dagster._daemon.run_coordinator.queued_run_coordinator_daemon import QueuedRunCoordinatorDaemon

    for name in ("USERNAME", "PASSWORD", "HOST", "DB", "PORT"):
        monkeypatch.setenv(f"DAGSTER_PG_{name}", "unused")
    shutil.copy(yaml_path, tmp_path / "dagster.yaml")
    config, _ = dagster_instance_config(str(tmp_path))  # the whole file, through Dagster's schema
    assert config["concurrency"]["runs"]["tag_concurrency_limits"] == PER_DAY_LIMIT

    # The instance each file makes (prod's PostgreSQL storage left out: no server here).
    import yaml

    without_storage = {k: v for k, v in yaml.safe_load(yaml_path.read_text()).items() if k != "storage"}
    (tmp_path / "dagster.yaml").write_text(yaml.safe_dump(without_storage))
    with dg.DagsterInstance.from_config(str(tmp_path)) as instance:
        assert isinstance(instance.run_coordinator, QueuedRunCoordinator)
        assert QueuedRunCoordinatorDaemon.daemon_type() in instance.get_required_daemon_types()
        limits = instance.get_concurrency_config().run_queue_config.tag_concurrency_limits
        assert limits == PER_DAY_LIMIT


def test_every_environment_variable_the_package_reads_is_in_the_one_table_and_documented():
    """`settings.VARS` is the one list: the landing zone, the deployments and the Databricks
    forwarding derive theirs from it, so a variable outside it would reach one and not the others."""
    import re

    from netflix_assets import settings

    package = Path(__file__).resolve().parents[1] / "netflix_assets"
    named = {
        name
        for path in package.rglob("*.py")
        for name in re.findall(r"\"((?:NETFLIX|DATABRICKS|AZURE|ARM)_[A-Z0-9_]+)\"", path.read_text())
    }
    assert named - set(settings.VARS) == set()
    # ...and every read of one goes through `settings`, but in the two modules that must import
    # nothing of the package: lib/faults.py ships in the Pipes wheel without it, and the Databricks
    # emulator loads resources/spark.py by path as the runtime's session factory.
    sources = {path.relative_to(package).as_posix(): path.read_text() for path in package.rglob("*.py")}
    constants = {k: v for text in sources.values() for k, v in re.findall(r"^([A-Z_]+) = \"([A-Z0-9_]+)\"", text, re.M)}
    reads = r"os\.(?:environ\.get\(|environ\[|getenv\()\s*([\"\w.]+)|([\"\w.]+) (?:not )?in os\.environ"
    direct = sorted(
        f"{rel}: {name}"
        for rel, text in sources.items()
        if rel not in ("settings.py", "lib/faults.py", "resources/spark.py")
        for arg in re.findall(reads, text)
        if (name := constants.get("".join(arg).split(".")[-1], "".join(arg).strip('"'))) in settings.VARS
    )
    assert direct == []
    docs = "".join((package.parent / doc).read_text() for doc in ("README.md", "DEPLOYMENT.md"))
    assert [name for name in settings.VARS if name not in docs] == []
    secret = {v.name for v in settings.VARS.values() if v.scope_key}
    assert secret.isdisjoint(settings.FORWARDED_ENV)
    assert set(LANDING_ENV.values()) <= set(settings.VARS)
