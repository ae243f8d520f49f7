"""Two writers at once: Delta's conflicts are retried, a file is claimed by one day only,
and a run's materialization metadata is its own commit's."""

from __future__ import annotations

import datetime as dt
import threading

import pytest

from netflix_assets.bronze import claims
from netflix_assets.bronze.ledger import CLAIMED, INGESTED
from netflix_assets.lib import delta

ROOT = "file:///landing"
DAY = dt.date(2026, 3, 1)


class Conflict(Exception):
    """Stands for io.delta.exceptions.ConcurrentAppendException as a session reports it."""


def test_a_lost_race_is_retried_with_backoff_and_other_errors_are_not():
    calls, waits = [], []

    def write(marker):
        calls.append(marker)
        if len(calls) < 3:
            raise Conflict("[DELTA_CONCURRENT_APPEND] Files were added to partition [ingest_date=2026-03-01]")

    delta.committed(write, "/lake/bronze/_ingested_files", sleep=waits.append)  # a MERGE: any conflict
    assert len(calls) == 3 and len(set(calls)) == 1 and len(waits) == 2 and waits[0] < waits[1]

    def broken(marker):
        raise ValueError("DELTA_COLUMN_NOT_FOUND")

    with pytest.raises(ValueError):
        delta.committed(broken, "/lake/silver/t", sleep=waits.append)
    assert len(waits) == 2

    def always(marker):
        raise Conflict("ConcurrentAppendException")

    with pytest.raises(Conflict):
        delta.committed(always, "/lake/bronze/_ingested_files", attempts=3, sleep=lambda s: None)


def test_a_replace_that_lost_its_rows_to_another_writer_fails_instead_of_writing_stale_rows():
    calls = []

    def replace(marker):
        calls.append(marker)
        if len(calls) == 1:
            raise Conflict("io.delta.exceptions.MetadataChangedException: [DELTA_METADATA_CHANGED]")  # a new column
        raise Conflict("io.delta.exceptions.ConcurrentAppendException: [DELTA_CONCURRENT_APPEND]")

    with pytest.raises(delta.ConcurrentWrite, match="another run changed the rows"):
        delta.committed(replace, "/lake/silver/t", sleep=lambda s: None, retry=delta.SCHEMA_CONFLICTS)
    assert len(calls) == 2  # the schema race was retried, the row race was not


def _row(path: str, day: dt.date, run: str, status: str = CLAIMED) -> tuple:
    now = dt.datetime(2026, 3, 1, 23, 59, 59, tzinfo=dt.timezone.utc)
    return (f"{ROOT}/{path}", 10, now, None, None, now, day, run, status, None)


def test_two_days_racing_for_one_file_leave_one_claim(spark, tmp_path, monkeypatch):
    """A batch of day D (queued at midnight) and the full run of D+1 claim one file at once:
    both MERGEs read the ledger before either commits; Delta commits one, the other's commit
    conflicts, and its retry finds the row and inserts nothing."""
    from deltalake import DeltaTable

    uri = str(tmp_path / "_ingested_files")
    claims.claim(spark, uri, ROOT, [_row("seed.csv", DAY, "seed")])  # the table exists, as in a lake
    both_read = threading.Barrier(2, timeout=30)
    first_attempt = threading.local()
    merge, conflicts = DeltaTable.merge, []

    def merge_after_both_read(self, *args, **kwargs):
        if not getattr(first_attempt, "done", False):
            first_attempt.done = True
            both_read.wait()  # each thread's snapshot is loaded: neither sees the other's row
        return merge(self, *args, **kwargs)

    is_conflict = delta.is_conflict
    monkeypatch.setattr(DeltaTable, "merge", merge_after_both_read)
    monkeypatch.setattr(delta, "is_conflict", lambda err: conflicts.append(err) or is_conflict(err))
    errors = []

    def run(day: dt.date, run_id: str):
        try:
            claims.claim(spark, uri, ROOT, [_row("new.csv", day, run_id), _row(f"{run_id}.csv", day, run_id)])
        except Exception as err:  # noqa: BLE001
            errors.append(err)

    threads = [threading.Thread(target=run, args=(DAY, "d")), threading.Thread(target=run, args=(DAY + dt.timedelta(days=1), "e"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(conflicts) == 1 and is_conflict(conflicts[0]), conflicts
    known = claims.read_claims(spark, uri, ROOT)
    assert sorted(known) == [f"{ROOT}/{p}" for p in ("d.csv", "e.csv", "new.csv", "seed.csv")]
    rows = spark.read.format("delta").load(uri).collect()
    assert sorted(r["path"] for r in rows) == ["d.csv", "e.csv", "new.csv", "seed.csv"], "one row per path, stored relative"
    [new] = [r for r in rows if r["path"] == "new.csv"]
    assert (new["run_id"], new["ingest_date"]) in {("d", DAY), ("e", DAY + dt.timedelta(days=1))}


@pytest.fixture(params=["delta-rs", "spark"])
def engine(request, monkeypatch):
    """The ledger's MERGEs run with delta-rs, or as Spark SQL where delta-rs is not installed."""
    if request.param == "spark":
        monkeypatch.setattr(claims, "_delta_rs", lambda: False)
    else:  # no silent fallback to Spark
        monkeypatch.setattr(claims.log, "warning", lambda *args: pytest.fail(args[0] % args[1:]))
    return request.param


def test_legacy_absolute_paths_are_made_relative_once(spark, tmp_path, engine):
    uri = str(tmp_path / "_ingested_files")
    claims.record(spark, uri, "file:///elsewhere", [_row("a.csv", DAY, "r0", INGESTED)])  # stored absolute
    assert [r["path"] for r in spark.read.format("delta").load(uri).collect()] == [f"{ROOT}/a.csv"]
    assert list(claims.read_claims(spark, uri, ROOT)) == [f"{ROOT}/a.csv"]
    claims.record(spark, uri, ROOT, [_row("a.csv", DAY, "r1", INGESTED)])
    rows = spark.read.format("delta").load(uri).collect()
    assert [(r["path"], r["run_id"]) for r in rows] == [("a.csv", "r1")]


def test_record_keeps_the_other_days_claim_and_metadata_names_the_own_commit(spark, tmp_path, engine):
    uri = str(tmp_path / "_ingested_files")
    claims.claim(spark, uri, ROOT, [_row("a.csv", DAY, "r1")])
    # A run of another day cannot overwrite the claim; its own day's run records it.
    claims.record(spark, uri, ROOT, [_row("a.csv", DAY + dt.timedelta(days=1), "r2", INGESTED)])
    claims.record(spark, uri, ROOT, [_row("a.csv", DAY, "r3", INGESTED)])
    [row] = spark.read.format("delta").load(uri).collect()
    assert (row["ingest_date"], row["run_id"], row["status"]) == (DAY, "r3", INGESTED)

    table = str(tmp_path / "t")
    df = spark.createDataFrame([("x", DAY)], "show_id string, ingest_date date")
    mine = delta.write_partitions(df, table, DAY, DAY + dt.timedelta(days=1))
    later = DAY + dt.timedelta(days=1)
    other = spark.createDataFrame([("y", later), ("z", later)], "show_id string, ingest_date date")
    delta.write_partitions(other, table, DAY + dt.timedelta(days=1), DAY + dt.timedelta(days=2))  # another run, later
    meta = delta.commit_metadata(spark, table, None, mine)
    assert (meta["delta_version"], meta["dagster/row_count"]) == (0, 1)
