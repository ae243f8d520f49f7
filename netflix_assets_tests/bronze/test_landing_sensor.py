"""The landing-zone sensor itself, evaluated like the daemon does (no Spark: ticks only; a run that
fails is a stand-in job on the same instance, tagged with the requested run key)."""

import datetime as dt
import os

import dagster as dg
import pyarrow as pa
from dagster._core.storage.tags import RUN_KEY_TAG
from deltalake import write_deltalake

from netflix_assets.bronze import ledger_store
from netflix_assets.bronze.ledger import CLAIMED, FAILED, LEDGER_TABLE, status_code
from netflix_assets.lib import clock
from netflix_assets.resources.landing import LandingZoneResource

from netflix_assets_tests.conftest import TUTORIAL_DIR
from netflix_assets_tests.lakehouse import Lakehouse

TITLES = TUTORIAL_DIR / "netflix_titles.csv"


def requested_files(tick: dg.SensorResult) -> list[str]:
    return [f for r in tick.run_requests for f in r.run_config["ops"]["bronze_netflix_titles"]["config"]["files"]]


def test_a_non_utf8_name_does_not_stop_the_good_file(lookup_server, tmp_path):
    lake = Lakehouse.create(tmp_path / "lake", lookup_server)
    good = lake.land(TITLES, "good.csv")
    zone = os.fsencode(str(tmp_path / "lake" / "raw" / "netflix_titles"))
    fd = os.open(zone + b"/caf\xe9.csv", os.O_WRONLY | os.O_CREAT, 0o644)  # Latin-1 é: not UTF-8
    os.write(fd, b"show_id,type,title\n")
    os.close(fd)
    tick = lake.tick()
    assert good in requested_files(tick)
    assert all(r.run_key.startswith("landing-") for r in tick.run_requests)
    # The cursor (any name in it) is stored and read back on the next ticks: nothing twice.
    again = lake.tick(tick.cursor)
    assert again.run_requests == [] and "files_outstanding=" in again.skip_reason.skip_message
    assert lake.tick(again.cursor).run_requests == []


@dg.op(name="bronze_netflix_titles")
def _failing_bronze():
    raise ValueError("cannot parse bad.csv")


@dg.job
def _failing_job():
    _failing_bronze()


def test_a_file_whose_runs_keep_failing_is_recorded_failed_then_requeued(lookup_server, tmp_path):
    root = tmp_path / "lake"
    landing = LandingZoneResource(
        uri=str(root / "raw" / "netflix_titles"), settle_seconds=0, max_attempts=1, min_failing_seconds=0
    )
    lake = Lakehouse.create(root, lookup_server, landing=landing)
    bad = lake.land(TITLES, "bad.csv")
    tick = lake.tick()
    [request] = tick.run_requests
    failed_run = _failing_job.execute_in_process(
        instance=lake.instance, tags={RUN_KEY_TAG: request.run_key}, raise_on_error=False
    )
    assert not failed_run.success

    gave_up = lake.tick(tick.cursor)
    assert gave_up.run_requests == [] and "files_failed=1" in gave_up.skip_reason.skip_message
    [row] = lake.rows(f"bronze/{LEDGER_TABLE}")
    assert row["path"] == "bad.csv" and status_code(row["status"]) == FAILED  # stored relative to the zone
    assert row["status"] == "failed: bronze_netflix_titles: ValueError: cannot parse bad.csv"
    assert row["run_id"] == failed_run.run_id and row["ingest_date"].isoformat() == request.partition_key
    assert row["size"] == TITLES.stat().st_size

    quiet = lake.tick(gave_up.cursor)
    assert quiet.run_requests == [] and "files_outstanding=0" in quiet.skip_reason.skip_message

    ledger = str(root / "bronze" / LEDGER_TABLE)
    assert ledger_store.requeue(ledger, ["bad.csv"], landing.root_uri()) == [bad]
    back = lake.tick(quiet.cursor)
    assert requested_files(back) == [bad] and back.run_requests[0].run_key != request.run_key


def test_a_claim_left_by_a_gone_run_is_requested_again_for_its_day(lookup_server, tmp_path):
    root = tmp_path / "lake"
    landing = LandingZoneResource(uri=str(root / "raw" / "netflix_titles"), settle_seconds=0, retry_base_seconds=0)
    lake = Lakehouse.create(root, lookup_server, landing=landing)
    stranded, busy = lake.land(TITLES, "2026/stranded.csv"), lake.land(TITLES, "busy.csv")
    alive = lake.instance.create_run_for_job(_failing_job)  # NOT_STARTED: its claim is not stranded
    yesterday = clock.today() - dt.timedelta(days=1)
    # What bronze leaves before its rows: `claimed` rows (paths relative to the zone), here of
    # yesterday's runs: one unknown to the instance (gone), one still to start.
    claims = {"path": ["2026/stranded.csv", "busy.csv"], "ingest_date": [yesterday] * 2, "status": [CLAIMED] * 2,
              "run_id": ["run-gone", alive.run_id], "size": [1, 1]}
    rows = {name: claims.get(name, [None] * 2) for name in ledger_store.arrow_schema().names}
    write_deltalake(str(root / "bronze" / LEDGER_TABLE), pa.table(rows, schema=ledger_store.arrow_schema()),
                    partition_by=["ingest_date"])
    [request] = lake.tick().run_requests
    assert (request.partition_key, requested_files(dg.SensorResult([request]))) == (yesterday.isoformat(), [stranded])


def test_a_claim_of_a_day_before_the_first_partition_blocks_no_other_file(lookup_server, tmp_path):
    """A lake older than its Dagster instance (a new DAGSTER_HOME, NETFLIX_PARTITIONS_START moved on) holds a
    claim of a day that is no partition. Requested, it made Dagster refuse the whole tick (unknown
    partition), the good file's request with it, on every tick. Evaluated as the daemon does."""
    from netflix_assets.partitions import daily_partitions
    from netflix_assets.sensor_runs import SENSOR_NAME

    root = tmp_path / "lake"
    landing = LandingZoneResource(uri=str(root / "raw" / "netflix_titles"), settle_seconds=0, retry_base_seconds=0)
    lake = Lakehouse.create(root, lookup_server, landing=landing)
    lake.land(TITLES, "old.csv")
    good = lake.land(TITLES, "good.csv")
    before = daily_partitions.start.date() - dt.timedelta(days=1)
    claim = {"path": ["old.csv"], "ingest_date": [before], "status": [CLAIMED], "run_id": ["run-gone"], "size": [1]}
    rows = {name: claim.get(name, [None]) for name in ledger_store.arrow_schema().names}
    write_deltalake(str(root / "bronze" / LEDGER_TABLE), pa.table(rows, schema=ledger_store.arrow_schema()),
                    partition_by=["ingest_date"])
    sensor = lake.defs.resolve_sensor_def(SENSOR_NAME)
    with dg.build_sensor_context(instance=lake.instance, resources=lake.defs.resources,
                                 repository_def=lake.defs.get_repository_def()) as context:
        data = sensor.evaluate_tick(context)  # resolves every request's partition, as the daemon does
    assert [(r.partition_key, requested_files(dg.SensorResult([r]))) for r in data.run_requests] == [
        (clock.today().isoformat(), [good])
    ]


def test_a_requeued_file_is_requested_again_for_its_own_day_with_fresh_attempts(lookup_server, tmp_path):
    """`make requeue` of a file recorded `failed` on day D sends it back to D, not to today: a run of D
    that died after storing some of its rows left them in D, where the batch's write replaces them
    (re-queued to today, the file was read into both days)."""
    root = tmp_path / "lake"
    landing = LandingZoneResource(
        uri=str(root / "raw" / "netflix_titles"), settle_seconds=0, max_attempts=1, min_failing_seconds=0
    )
    lake = Lakehouse.create(root, lookup_server, landing=landing)
    bad = lake.land(TITLES, "2026/bad.csv")
    yesterday = clock.today() - dt.timedelta(days=1)
    failed = {"path": ["2026/bad.csv"], "ingest_date": [yesterday], "status": [f"{FAILED}: its runs kept failing"],
              "run_id": ["run-gone"], "size": [TITLES.stat().st_size]}
    rows = {name: failed.get(name, [None]) for name in ledger_store.arrow_schema().names}
    ledger = str(root / "bronze" / LEDGER_TABLE)
    write_deltalake(ledger, pa.table(rows, schema=ledger_store.arrow_schema()), partition_by=["ingest_date"])
    waiting = lake.tick()
    assert waiting.run_requests == [], "a failed file waits to be re-queued"
    assert ledger_store.requeue(ledger, ["2026/bad.csv"], landing.root_uri()) == [bad]
    [row] = lake.rows(f"bronze/{LEDGER_TABLE}")
    assert (row["status"], row["run_id"], row["ingest_date"]) == (CLAIMED, None, yesterday)
    back = lake.tick(waiting.cursor)  # max_attempts=1: a failed attempt would record it failed at once
    [request] = back.run_requests
    assert (request.partition_key, requested_files(back)) == (yesterday.isoformat(), [bad])


def test_the_day_requested_is_netflix_today_not_the_wall_clock(lookup_server, tmp_path, monkeypatch):
    # NETFLIX_TODAY (clock.today) names the partition of new files; file ages stay real time.
    pinned = clock.now().date() - dt.timedelta(days=3)
    monkeypatch.setenv(clock.TODAY_ENV, pinned.isoformat())
    lake = Lakehouse.create(tmp_path / "lake", lookup_server)
    landed = lake.land(TITLES, "titles.csv")
    [request] = lake.tick().run_requests
    assert (request.partition_key, requested_files(dg.SensorResult([request]))) == (pinned.isoformat(), [landed])
    assert request.partition_key != clock.now().date().isoformat()
