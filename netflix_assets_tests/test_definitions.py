"""The code location loads without Spark and matches the data contract's interface."""

import subprocess
import sys

import dagster as dg
import pytest

from netflix_assets.definitions import defs
from netflix_assets.partitions import daily_partitions

# The data contract's tables, written out from docs/data-contract.md rather than derived from
# `LOOKUPS`: derived, a lookup dropped from the registry would vanish from both sides unnoticed.
CONTRACT_DATASETS = ("netflix_titles", "netflix_cast", "netflix_category", "netflix_countries", "netflix_directors")
CONTRACT_TABLES = {f"{layer}/{table}" for layer in ("bronze", "silver", "gold", "quarantine") for table in CONTRACT_DATASETS}


def _graph():
    return defs.resolve_asset_graph()


def test_contract_tables_are_assets_keyed_layer_table_with_the_shared_partitions():
    graph = _graph()
    keys = {k.to_user_string() for k in graph.get_all_asset_keys()}
    assert CONTRACT_TABLES <= keys
    for key in CONTRACT_TABLES:
        assert graph.get(dg.AssetKey(key.split("/"))).partitions_def == daily_partitions


def test_every_table_has_checks_declared_with_its_partitions():
    graph = _graph()
    checked = {k.asset_key.to_user_string() for k in graph.asset_check_keys}
    for layer in ("bronze", "silver", "gold"):
        for table in CONTRACT_DATASETS:
            assert f"{layer}/{table}" in checked
    specs = [spec for checks_def in defs.asset_checks for spec in checks_def.check_specs]
    assert len(specs) == len(graph.asset_check_keys)
    for spec in specs:
        assert spec.partitions_def == daily_partitions, spec.key


def test_lineage_runs_bronze_to_silver_to_gold():
    graph = _graph()
    parents = lambda key: {p.to_user_string() for p in graph.get(dg.AssetKey(key.split("/"))).parent_keys}  # noqa: E731
    assert "bronze/netflix_titles" in parents("silver/netflix_titles")
    assert "silver/netflix_titles" in parents("gold/netflix_titles")
    assert {"bronze/netflix_cast", "bronze/netflix_titles"} <= parents("silver/netflix_cast")
    assert "raw/netflix_cast" in parents("bronze/netflix_cast")


def test_local_deployment_runs_steps_in_threads_of_one_process(monkeypatch):
    # One SparkSession per run: no JVM per step.
    from netflix_assets.deployments import executor_for
    from netflix_assets.step_threads import NAME

    assert defs.resolve_job_def("lakehouse_job").executor_def.name == NAME
    monkeypatch.setenv("NETFLIX_STEP_THREADS", "1")
    assert executor_for("local").name == dg.in_process_executor.name


def test_dagster_definitions_validate_passes_and_starts_no_jvm():
    code = (
        "import netflix_assets.definitions, pyspark\n"
        "from pyspark import SparkContext\n"
        "assert SparkContext._active_spark_context is None, 'a JVM started at import'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
    done = subprocess.run(
        [sys.executable, "-m", "dagster", "definitions", "validate", "-m", "netflix_assets.definitions"],
        capture_output=True, text=True,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Validation successful" in done.stderr + done.stdout


def test_spark_python_workers_import_the_transforms_without_dagster():
    """The bronze parser and hasher run in Spark's Python workers, which import their module:
    the package loads its definitions only when `netflix_assets.defs` is asked for, as
    `dagster ... -m netflix_assets` does (the data contract's commands)."""
    code = (
        "import sys, inspect\n"
        "import netflix_assets.transforms.bronze\n"
        "assert 'dagster' not in sys.modules, 'importing a transform imported dagster'\n"
        "import netflix_assets, dagster as dg\n"
        "assert [n for n, v in inspect.getmembers(netflix_assets) if isinstance(v, dg.Definitions)] == ['defs']\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
    done = subprocess.run([sys.executable, "-m", "dagster", "asset", "list", "-m", "netflix_assets"],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "gold/kpi_top_people" in done.stdout


def test_landing_sensor_and_daily_pull_schedule_target_the_partitioned_jobs():
    sensor = defs.resolve_sensor_def("landing_zone_sensor")
    schedule = defs.resolve_schedule_def("daily_lookup_pull")
    assert schedule.job_name == "lakehouse_job"
    assert {t.job_name for t in sensor.targets} == {"lakehouse_job", "landed_titles_job"}
    # A landed file does not pull the lookups again: no HTTP pull, no bronze lookup in its job.
    titles_job = {n.name for n in defs.resolve_job_def("landed_titles_job").graph.node_defs}
    assert "raw__netflix_cast" not in titles_job and "bronze__netflix_cast" not in titles_job
    assert {"bronze_netflix_titles", "silver_netflix_cast", "gold__kpi_top_people", "gold__kpi_top_people__checks"} <= titles_job
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING
    assert {"landing", "lake"} <= set(sensor.required_resource_keys)
    import datetime as dt

    tick = dt.datetime(2026, 11, 24, 6, 0, tzinfo=dt.timezone.utc)
    request = schedule(dg.build_schedule_context(scheduled_execution_time=tick))
    assert (request.partition_key, request.run_key) == ("2026-11-24", "lookups-2026-11-24")


def test_landing_zone_credentials_are_environment_variables(monkeypatch):
    from netflix_assets.deployments import local_resources

    monkeypatch.setenv("NETFLIX_LANDING_URI", "abfss://raw@acct.dfs.core.windows.net/netflix_titles")
    monkeypatch.setenv("NETFLIX_LANDING_ACCOUNT_KEY", "not-a-real-key")
    landing = local_resources()["landing"]
    assert landing.uri == "abfss://raw@acct.dfs.core.windows.net/netflix_titles"
    assert landing.account_key == dg.EnvVar("NETFLIX_LANDING_ACCOUNT_KEY")


def test_gold_follows_silver_and_kpis_have_a_freshness_policy():
    graph = _graph()
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        if key.path[0] in ("silver", "gold"):
            assert node.automation_condition is not None, key
        if key.path[-1].startswith("kpi_"):
            assert node.freshness_policy is not None, key
    assert defs.resolve_sensor_def("follow_upstream").default_status == dg.DefaultSensorStatus.RUNNING


def test_the_checks_of_one_table_run_in_one_step():
    """One step per checked table (a Databricks run each in prod), not one per check."""
    graph = _graph()
    tables = {k.asset_key for k in graph.asset_check_keys}
    for checks_def in defs.asset_checks:
        assert len({spec.asset_key for spec in checks_def.check_specs}) == 1, checks_def.node_def.name
    assert len(defs.asset_checks) == len(tables)
    job = defs.resolve_job_def("lakehouse_job")
    check_nodes = [n for n in job.graph.node_defs if n.name.endswith("__checks")]
    assert len(check_nodes) == len(tables) < len(graph.asset_check_keys)


def test_bronze_titles_and_its_quarantine_are_materialized_together():
    """A selection of one of them would claim files in the ledger whose rows the other holds:
    Dagster refuses it, naming both (the UI selects both)."""
    job = defs.resolve_job_def("lakehouse_job")
    with pytest.raises(dg.DagsterInvalidSubsetError, match="quarantine.*bronze_netflix_titles|bronze_netflix_titles.*quarantine"):
        job.get_subset(asset_selection={dg.AssetKey(["bronze", "netflix_titles"])})
