"""The prod deployment, built from environment variables with no network:
Databricks step launcher on every Spark step, ADLS IO managers, no secret in config."""

import os
import subprocess
import sys

import dagster as dg
import pytest
from dagster_azure.adls2 import ADLS2PickleIOManager
from dagster_databricks.databricks_pyspark_step_launcher import DatabricksPySparkStepLauncher

from netflix_assets.definitions import build_definitions
from netflix_assets.deployments import resources_for
from netflix_assets.io_managers.delta import SparkDeltaIOManager
from netflix_assets.resources.databricks import CLUSTER_LIBRARIES, STEP_LAUNCHER_KEY, staged_code_dir

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
    assert isinstance(resources["pickle_io_manager"], ADLS2PickleIOManager)
    assert resources["pickle_io_manager"].adls2_file_system == "lakehouse"
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
    assert {s["name"] for s in launcher.secrets} == {"NETFLIX_ADLS_ACCOUNT_KEY"}
    assert launcher.storage["adls2"]["storage_account_name"] == "netflixlake"


def test_prod_config_holds_variable_names_never_secret_values(prod_env):
    resources = resources_for("prod")
    launcher_config = resources[STEP_LAUNCHER_KEY].config_schema  # configured(): the schema holds defaults
    dumped = repr(launcher_config) + repr({k: v for k, v in resources.items() if k != STEP_LAUNCHER_KEY})
    for value in SECRETS.values():
        assert value not in dumped


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
