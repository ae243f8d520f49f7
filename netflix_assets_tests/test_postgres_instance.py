"""The production instance (deploy/prod/dagster.yaml) against a real PostgreSQL server:
Debian's `postgresql` (installed by `make test`), started on 127.0.0.1 by a fixture.
A partitioned materialization and a landing-zone sensor tick (evaluated the way the
daemon does) are stored in, and read back from, PostgreSQL."""

from __future__ import annotations

import dataclasses
import logging
import os
import shutil
from pathlib import Path
from typing import Iterator

import dagster as dg
import pytest
from dagster._core.definitions.run_request import InstigatorType
from dagster._core.scheduler.instigation import TickStatus

from netflix_assets import sensor_runs
from netflix_assets.bronze import discovery
from netflix_assets.later_days import LATER_DAYS_TAG

from netflix_assets_tests.conftest import TUTORIAL_DIR, today_iso
from netflix_assets_tests.lakehouse import Lakehouse, check_results
from netflix_assets_tests.postgres import Postgres, debian_bin_dir, running_postgres

pytestmark = pytest.mark.filterwarnings(
    # Dagster's own snapshot of the code location (the daemon path) reads a deprecated schedule property.
    "ignore:Property `ScheduleDefinition.environment_vars` is deprecated:DeprecationWarning"
)

PROD_YAML = Path(__file__).resolve().parent.parent / "deploy" / "prod" / "dagster.yaml"
DIRECTORS = dg.AssetKey(["bronze", "netflix_directors"])
RAW_DIRECTORS = dg.AssetKey(["raw", "netflix_directors"])
BRONZE_TITLES = [dg.AssetKey(["bronze", "netflix_titles"]), dg.AssetKey(["quarantine", "bronze_netflix_titles"])]


@pytest.fixture(scope="module")
def postgres() -> Iterator[Postgres]:
    bin_dir = debian_bin_dir()
    if bin_dir is None:
        message = "Debian's postgresql is not installed (/usr/lib/postgresql/<version>/bin): run `make test`"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    with running_postgres(bin_dir) as server:
        yield server
    print(f"postgres timings (s): {server.timings}")


@pytest.fixture(scope="module")
def instance(postgres, tmp_path_factory):
    """deploy/prod/dagster.yaml in a fresh DAGSTER_HOME, its settings from the environment."""
    home = tmp_path_factory.mktemp("dagster_home")
    shutil.copy(PROD_YAML, home / "dagster.yaml")
    monkeypatch = pytest.MonkeyPatch()
    for name, value in postgres.env().items():
        monkeypatch.setenv(name, value)
    try:
        with dg.DagsterInstance.from_config(str(home)) as instance:
            yield instance
    finally:
        monkeypatch.undo()


@pytest.fixture(scope="module")
def lake(instance, spark, lookup_server, tmp_path_factory) -> Lakehouse:
    """The real definitions over a temporary lake, with the PostgreSQL instance."""
    lake = Lakehouse.create(tmp_path_factory.mktemp("lake"), lookup_server)
    return dataclasses.replace(lake, instance=instance)


@pytest.fixture(scope="module")
def day() -> str:
    return today_iso()


def query(postgres: Postgres, sql: str, *params):
    with postgres.connect() as connection, connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    connection.close()
    return rows


# ------------------------------------------------------------------ the instance


def test_prod_yaml_takes_every_connection_setting_from_the_environment():
    import yaml

    storage = yaml.safe_load(PROD_YAML.read_text())["storage"]["postgres"]
    assert "postgres_url" not in storage
    db = storage["postgres_db"]
    assert {field: db[field] for field in ("username", "password", "hostname", "db_name", "port")} == {
        "username": {"env": "DAGSTER_PG_USERNAME"},
        "password": {"env": "DAGSTER_PG_PASSWORD"},
        "hostname": {"env": "DAGSTER_PG_HOST"},
        "db_name": {"env": "DAGSTER_PG_DB"},
        "port": {"env": "DAGSTER_PG_PORT"},
    }


RUN_MONITORING = {
    "enabled": True,
    "start_timeout_seconds": 180,
    "cancel_timeout_seconds": 180,
    "max_runtime_seconds": 3 * 3600,
    "poll_interval_seconds": 60,
}


def test_prod_yaml_monitors_runs(tmp_path):
    """Checked against Dagster's instance schema without PostgreSQL (misspelt keys fail here)."""
    from dagster._core.instance.config import dagster_instance_config

    shutil.copy(PROD_YAML, tmp_path / "dagster.yaml")
    config, _ = dagster_instance_config(str(tmp_path))
    assert config["run_monitoring"] == RUN_MONITORING


def test_instance_storage_is_postgres_and_its_tables_exist(instance, postgres):
    assert type(instance.run_storage).__name__ == "PostgresRunStorage"
    assert type(instance.event_log_storage).__name__ == "PostgresEventLogStorage"
    assert type(instance.schedule_storage).__name__ == "PostgresScheduleStorage"
    tables = {name for (name,) in query(postgres, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
    assert {"runs", "run_tags", "event_logs", "asset_keys", "asset_check_executions", "instigators", "job_ticks",
            "alembic_version"} <= tables
    # Over TCP the server wants the password: the yaml's DAGSTER_PG_PASSWORD is really used.
    import psycopg2

    with pytest.raises(psycopg2.OperationalError, match="password"):
        postgres.connect(password="not-the-password")


def test_instance_settings(instance):
    from dagster._core.run_coordinator import QueuedRunCoordinator

    assert isinstance(instance.run_coordinator, QueuedRunCoordinator)
    queue = instance.get_concurrency_config().run_queue_config
    assert queue.max_concurrent_runs == 2
    assert [(limit["key"], limit["limit"]) for limit in queue.tag_concurrency_limits] == [
        ("dagster/partition", 1), (LATER_DAYS_TAG, 1)]
    assert not instance.telemetry_enabled
    assert instance.freshness_enabled
    # A run whose worker dies does not stay STARTED for ever.
    assert instance.run_monitoring_enabled
    assert instance.run_monitoring_start_timeout_seconds == RUN_MONITORING["start_timeout_seconds"]
    assert instance.run_monitoring_cancel_timeout_seconds == RUN_MONITORING["cancel_timeout_seconds"]
    assert instance.run_monitoring_max_runtime_seconds == RUN_MONITORING["max_runtime_seconds"]
    assert instance.run_monitoring_poll_interval_seconds == RUN_MONITORING["poll_interval_seconds"]


# ------------------------------------------------------------------ a partitioned materialization


@pytest.fixture(scope="module")
def directors_run(lake, day):
    """One daily partition of one lookup: its HTTP pull and its bronze table (with checks)."""
    return day, lake.run(day, asset_selection=[RAW_DIRECTORS, DIRECTORS])


def test_partitioned_materialization_is_stored_in_postgres(directors_run, instance, postgres):
    day, result = directors_run
    assert result.success
    record = instance.get_run_record_by_id(result.run_id)
    assert record.dagster_run.status == dg.DagsterRunStatus.SUCCESS
    assert record.dagster_run.tags["dagster/partition"] == day
    for key in (RAW_DIRECTORS, DIRECTORS):
        event = instance.get_latest_materialization_event(key)
        assert event is not None and event.run_id == result.run_id
        assert event.asset_materialization.partition == day
        assert instance.get_materialized_partitions(key) == {day}
    metadata = instance.get_latest_materialization_event(DIRECTORS).asset_materialization.metadata
    assert metadata["dagster/row_count"].value > 4000
    # The same facts, straight from the database.
    [(count,)] = query(
        postgres,
        "SELECT count(*) FROM event_logs WHERE run_id = %s AND dagster_event_type = 'ASSET_MATERIALIZATION'",
        result.run_id,
    )
    assert count == 2
    [(status,)] = query(postgres, "SELECT status FROM runs WHERE run_id = %s", result.run_id)
    assert status == "SUCCESS"


def test_asset_check_evaluations_are_stored_in_postgres(directors_run, instance, postgres):
    day, result = directors_run
    expected = {"header_recognised", "row_count_not_halved"}
    evaluated = check_results(result)
    assert {name.split(":")[1] for name in evaluated if name.startswith("bronze/netflix_directors:")} == expected
    for name in expected:
        [execution] = instance.event_log_storage.get_asset_check_execution_history(
            dg.AssetCheckKey(DIRECTORS, name), limit=5
        )
        assert execution.run_id == result.run_id and execution.partition == day
        assert execution.status.value == "SUCCEEDED"
    rows = query(
        postgres,
        "SELECT check_name, execution_status FROM asset_check_executions WHERE run_id = %s AND partition = %s",
        result.run_id,
        day,
    )
    assert sorted(rows) == sorted((name, "SUCCEEDED") for name in expected)


# ------------------------------------------------------------------ a sensor tick, as the daemon does it

CODE_LOCATION = """\
# Generated by test_postgres_instance.py: the project's definitions over the test lake.
from netflix_assets.definitions import build_definitions
from netflix_assets.deployments import local_resources
from netflix_assets.resources.http_source import HttpSourceResource
from netflix_assets.resources.landing import LandingZoneResource

defs = build_definitions(
    local_resources(
        lake_uri={lake!r},
        http_source=HttpSourceResource(base_url={lookup_url!r}),
        landing=LandingZoneResource(uri={landing!r}, settle_seconds={settle!r}),
    )
)
"""


def daemon_sensor_iteration(instance: dg.DagsterInstance, code_location_file: Path) -> None:
    """One iteration of the sensor daemon over an in-process code location: the tick,
    the cursor and the run requests go through the instance's storages and run coordinator."""
    from dagster._core.remote_origin import InProcessCodeLocationOrigin
    from dagster._core.types.loadable_target_origin import LoadableTargetOrigin
    from dagster._core.workspace.context import WorkspaceProcessContext
    from dagster._core.workspace.load_target import InProcessWorkspaceLoadTarget
    from dagster._daemon.sensor import execute_sensor_iteration

    origin = InProcessCodeLocationOrigin(
        loadable_target_origin=LoadableTargetOrigin(
            python_file=str(code_location_file), attribute="defs", working_directory=str(code_location_file.parent)
        ),
        location_name="netflix_assets",
    )
    # In process: no code server to start, and the session's SparkSession is not involved
    # (the sensor reads the ledger with delta-rs).
    with WorkspaceProcessContext(instance, InProcessWorkspaceLoadTarget(origin)) as context:
        list(execute_sensor_iteration(context, logging.getLogger("sensor_daemon"), None, None))


@pytest.fixture(scope="module")
def sensor_tick(lake, lookup_server, instance, tmp_path_factory):
    landing = lake.defs.resources["landing"]
    code_location = tmp_path_factory.mktemp("code_location") / "netflix_pg_test_location.py"
    code_location.write_text(
        CODE_LOCATION.format(
            lake=str(lake.root), lookup_url=lookup_server, landing=landing.uri, settle=landing.settle_seconds
        )
    )
    landed = lake.land(TUTORIAL_DIR / "netflix_titles.csv", "netflix_titles.csv")
    daemon_sensor_iteration(instance, code_location)
    [state] = [
        s for s in instance.all_instigator_state(instigator_type=InstigatorType.SENSOR)
        if s.instigator_name == sensor_runs.SENSOR_NAME
    ]
    return landed, state


def test_sensor_tick_cursor_and_run_request_are_stored_in_postgres(sensor_tick, instance, postgres, day):
    landed, state = sensor_tick
    [tick] = instance.get_ticks(state.instigator_origin_id, state.selector_id)
    assert tick.status == TickStatus.SUCCESS
    [run_key] = tick.run_keys
    assert run_key.startswith(f"landing-{day}-")
    # The cursor the daemon persisted names the requested batch.
    cursor = state.instigator_data.cursor
    assert cursor == tick.cursor
    assert discovery.Cursor.parse(cursor).pending[run_key].files == [landed]
    # The QueuedRunCoordinator queued the requested run (no daemon here to dequeue it).
    [run] = instance.get_runs(filters=dg.RunsFilter(tags={"dagster/run_key": run_key}))
    assert tick.run_ids == [run.run_id]
    assert run.status == dg.DagsterRunStatus.QUEUED
    assert run.tags["dagster/partition"] == day
    assert run.run_config["ops"]["bronze_netflix_titles"]["config"]["files"] == [landed]
    [(ticks,)] = query(postgres, "SELECT count(*) FROM job_ticks WHERE selector_id = %s", state.selector_id)
    [(status,)] = query(postgres, "SELECT status FROM runs WHERE run_id = %s", run.run_id)
    assert (ticks, status) == (1, "QUEUED")


def test_requested_batch_runs_and_the_next_tick_requests_nothing(sensor_tick, lake, instance, day):
    landed, state = sensor_tick
    [tick] = instance.get_ticks(state.instigator_origin_id, state.selector_id)
    queued = instance.get_run_by_id(tick.run_ids[0])
    # The bronze step of the requested batch, with its config and run_key, on the same instance
    # (the whole graph would cost a minute: test_ingestion_scenario covers it).
    job = lake.defs.resolve_job_def("lakehouse_job")
    result = job.execute_in_process(
        run_config=queued.run_config,
        partition_key=queued.tags["dagster/partition"],
        tags={"dagster/run_key": queued.tags["dagster/run_key"]},
        instance=instance,
        asset_selection=BRONZE_TITLES,
        raise_on_error=False,
    )
    assert result.success
    event = instance.get_latest_materialization_event(BRONZE_TITLES[0])
    assert event.run_id == result.run_id and event.asset_materialization.partition == day
    assert event.asset_materialization.metadata["files_read"].value == 1
    # The next tick, from the cursor stored in PostgreSQL: the file is in the ledger now.
    again = sensor_runs.tick(lake.defs, instance, state.instigator_data.cursor)
    assert not again.run_requests
    assert "0 requested" in again.skip_reason.skip_message
