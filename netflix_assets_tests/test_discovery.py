"""The sensor's and the ledger's decisions, as plain functions (no Spark, no Dagster run)."""

import datetime as dt

from netflix_assets.bronze import discovery
from netflix_assets.bronze.ledger import DUPLICATE, OUTSIDE, Claim, mark_duplicates, select_claims
from netflix_assets.resources.landing import LandedFile

NOW = dt.datetime(2026, 11, 24, 12, 0, tzinfo=dt.timezone.utc)
OLD = dt.datetime(2019, 1, 1, tzinfo=dt.timezone.utc)
DAY = NOW.date()


def landed(name: str, size: int = 10, modified: dt.datetime = OLD) -> LandedFile:
    return LandedFile(f"file:///zone/{name}", size, modified)


def decide(files, claimed=(), cursor=None, settle=30.0, status=None, escaped=(), now=NOW):
    return discovery.decide(
        files, list(escaped), set(claimed), cursor or discovery.Cursor(), now, settle, lambda key: (status or {}).get(key)
    )


def test_new_settled_files_make_one_request_for_today():
    tick = decide([landed("a.csv"), landed("b.csv")])
    assert [(r.partition_key, r.files) for r in tick.requests] == [
        (DAY.isoformat(), ["file:///zone/a.csv", "file:///zone/b.csv"])
    ]


def test_a_reevaluated_tick_gives_the_same_run_key():
    files = [landed("a.csv"), landed("b.csv")]
    assert decide(files).requests[0].run_key == decide(list(reversed(files))).requests[0].run_key


def test_files_in_the_ledger_or_in_flight_are_not_requested_again():
    first = decide([landed("a.csv")])
    second = decide([landed("a.csv"), landed("b.csv")], cursor=discovery.Cursor.parse(first.cursor.dump()))
    assert [r.files for r in second.requests] == [["file:///zone/b.csv"]]
    # Once bronze has recorded a.csv, its batch leaves the cursor.
    third = decide([landed("a.csv"), landed("b.csv")], claimed={"file:///zone/a.csv", "file:///zone/b.csv"},
                   cursor=second.cursor)
    assert third.requests == [] and third.cursor.pending == {}


def test_old_modification_time_and_equal_timestamps_are_still_picked_up():
    # The cursor is the set of known files, not a modification-time watermark.
    files = [landed("x.csv", modified=OLD), landed("y.csv", modified=OLD)]
    tick = decide(files, claimed={"file:///zone/z.csv"})
    assert tick.requests[0].files == ["file:///zone/x.csv", "file:///zone/y.csv"]


def test_a_file_still_being_written_waits_until_it_stops_changing():
    fresh = NOW - dt.timedelta(seconds=2)
    first = decide([landed("a.csv", 100, fresh)])
    assert first.requests == [] and first.waiting == ["file:///zone/a.csv"]
    grown = decide([landed("a.csv", 250, fresh + dt.timedelta(seconds=1))], cursor=first.cursor, now=NOW)
    assert grown.requests == [], "size changed between ticks: still being written"
    same = decide([landed("a.csv", 250, fresh + dt.timedelta(seconds=1))], cursor=grown.cursor, now=NOW)
    assert [r.files for r in same.requests] == [["file:///zone/a.csv"]]


def test_a_failed_run_gets_its_files_requested_again_under_a_new_run_key():
    first = decide([landed("a.csv")])
    key = first.requests[0].run_key
    running = decide([landed("a.csv")], cursor=first.cursor, status={key: "STARTED"})
    assert running.requests == []
    retried = decide([landed("a.csv")], cursor=first.cursor, status={key: "FAILURE"})
    assert [r.files for r in retried.requests] == [["file:///zone/a.csv"]]
    assert retried.requests[0].run_key != key


def test_names_escaping_the_zone_are_requested_for_bronze_to_record_them():
    tick = decide([], escaped=["file:///zone/link.csv"])
    assert tick.requests[0].files == ["file:///zone/link.csv"]


def test_large_bursts_are_split_into_batches():
    files = [landed(f"f{i:05}.csv") for i in range(1203)]
    tick = discovery.decide(files, [], set(), discovery.Cursor(), NOW, 30, lambda key: None, max_files_per_run=500)
    assert [len(r.files) for r in tick.requests] == [500, 500, 203]
    assert len({r.run_key for r in tick.requests}) == 3


def claim(path, day=DAY, sha="h1", at=NOW, status=None):
    return Claim(path, 1, OLD, at, day, sha256=sha, status=status)


def test_same_bytes_under_another_name_is_a_duplicate_of_the_first_seen():
    known = {"a": claim("a", day=DAY - dt.timedelta(days=1), at=NOW - dt.timedelta(days=1))}
    marked = mark_duplicates([claim("b"), claim("c", sha="h2")], known)
    assert [(c.path, c.status, c.duplicate_of) for c in marked] == [("b", DUPLICATE, "a"), ("c", None, None)]


def test_two_copies_in_one_batch_keep_the_first_by_name():
    marked = mark_duplicates([claim("b"), claim("a")], {})
    assert {c.path: c.status for c in marked} == {"a": None, "b": DUPLICATE}


def test_a_batch_reads_exactly_its_files_and_skips_other_days():
    known = {"file:///zone/old.csv": claim("file:///zone/old.csv", day=DAY - dt.timedelta(days=3))}
    claims, skipped = select_claims(
        DAY, known, [landed("new.csv"), landed("old.csv")], NOW, 30,
        requested=["file:///zone/new.csv", "file:///zone/old.csv", "file:///zone/gone.csv"],
    )
    assert [c.path for c in claims] == ["file:///zone/new.csv"]
    assert any("already claimed" in m for m in skipped) and any("not in the landing zone" in m for m in skipped)


def test_rematerializing_a_past_day_rereads_its_files_only():
    yesterday = DAY - dt.timedelta(days=1)
    known = {"file:///zone/a.csv": claim("file:///zone/a.csv", day=yesterday)}
    claims, _ = select_claims(yesterday, known, [landed("a.csv"), landed("b.csv")], NOW, 30)
    assert [c.path for c in claims] == ["file:///zone/a.csv"]
    today, _ = select_claims(DAY, known, [landed("a.csv"), landed("b.csv"), landed("c.csv", modified=NOW)], NOW, 30)
    assert [c.path for c in today] == ["file:///zone/b.csv"], "c.csv is not settled yet"


def test_outside_claims_are_never_duplicates():
    marked = mark_duplicates([Claim("x", 0, None, NOW, DAY, status=OUTSIDE)], {})
    assert marked[0].status == OUTSIDE
