"""The sensor's and the ledger's decisions, as plain functions (no Spark, no Dagster run)."""

import dataclasses
import datetime as dt
import json

import pytest

from netflix_assets.bronze import discovery
from netflix_assets.bronze import ledger
from netflix_assets.bronze.ledger import DUPLICATE, OUTSIDE, Claim, mark_duplicates, select_claims
from netflix_assets.bronze.ledger_store import OpenClaim
from netflix_assets.resources.landing import LandedFile

NOW = dt.datetime(2026, 11, 24, 12, 0, tzinfo=dt.timezone.utc)
OLD = dt.datetime(2019, 1, 1, tzinfo=dt.timezone.utc)
DAY = NOW.date()


def landed(name: str, size: int = 10, modified: dt.datetime = OLD) -> LandedFile:
    return LandedFile(f"file:///zone/{name}", size, modified)


def decide(files, claimed=(), cursor=None, settle=30.0, status=None, escaped=(), now=NOW, limits=discovery.Limits(),
           open_claims=(), runs=None, first_day=None):
    """`open_claims`: the ledger's `claimed` rows (their paths are in the ledger too); `runs`: run id -> status."""
    return discovery.decide(
        files, list(escaped), set(claimed) | {c.path for c in open_claims}, cursor or discovery.Cursor(), now, settle,
        lambda key: (status or {}).get(key), limits, open_claims=list(open_claims),
        claim_run_status=lambda run_id: (runs or {}).get(run_id), first_day=first_day,
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
    tick = dt.timedelta(seconds=30)
    first = decide([landed("a.csv", 100, NOW - dt.timedelta(seconds=2))])
    assert first.requests == [] and first.waiting == ["file:///zone/a.csv"]
    written = NOW + tick - dt.timedelta(seconds=5)
    grown = decide([landed("a.csv", 250, written)], cursor=first.cursor, now=NOW + tick)
    assert grown.requests == [], "size changed between ticks: still being written"
    same = decide([landed("a.csv", 250, written)], cursor=grown.cursor, now=NOW + 2 * tick)
    assert [r.files for r in same.requests] == [["file:///zone/a.csv"]]


def test_unchanged_across_ticks_settles_a_file_only_after_settle_seconds():
    # settle_seconds=600 for a producer that pauses for minutes: a file unchanged from one tick to
    # the next (30 s) was taken at once, half written. With or without modification times.
    for modified in (None, NOW - dt.timedelta(seconds=5)):
        first = decide([landed("a.csv", 100, modified)], settle=600)
        second = decide([landed("a.csv", 100, modified)], cursor=discovery.Cursor.parse(first.cursor.dump()),
                        settle=600, now=NOW + dt.timedelta(seconds=30))
        assert second.requests == [] and second.waiting == ["file:///zone/a.csv"], modified
        later = decide([landed("a.csv", 100, modified)], cursor=second.cursor, settle=600,
                       now=NOW + dt.timedelta(seconds=600))
        assert [r.files for r in later.requests] == [["file:///zone/a.csv"]], modified


def test_a_failed_run_gets_its_files_requested_again_under_a_new_run_key():
    first = decide([landed("a.csv")])
    key = first.requests[0].run_key
    running = decide([landed("a.csv")], cursor=first.cursor, status={key: "STARTED"})
    assert running.requests == []
    later = NOW + dt.timedelta(hours=1)
    failed = decide([landed("a.csv")], cursor=first.cursor, status={key: "FAILURE"}, now=NOW + dt.timedelta(minutes=1))
    retried = decide([landed("a.csv")], cursor=failed.cursor, now=later)
    assert [r.files for r in retried.requests] == [["file:///zone/a.csv"]]
    assert retried.requests[0].run_key != key


def test_names_escaping_the_zone_are_requested_for_bronze_to_record_them():
    tick = decide([], escaped=["file:///zone/link.csv"])
    assert tick.requests[0].files == ["file:///zone/link.csv"]


def test_large_bursts_are_split_into_batches():
    files = [landed(f"f{i:05}.csv") for i in range(1203)]
    tick = discovery.decide(
        files, [], set(), discovery.Cursor(), NOW, 30, lambda key: None, discovery.Limits(max_files_per_run=500)
    )
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


def test_a_claim_never_read_takes_the_listings_size_a_claim_read_keeps_its_own():
    """`make requeue` after the file was fixed in place (what the `no_failed_files` check asks): its claim,
    never read, takes the listing's size, where the size it was claimed with refused the fixed file as
    `changed_during_read`. A claim already read keeps what it read (`changed_since_read` judges the rest)."""
    fixed, read = landed("fixed.csv", size=99), landed("read.csv", size=99)
    known = {
        fixed.uri: dataclasses.replace(claim(fixed.uri), status=ledger.CLAIMED, size=10, sha256=None),
        read.uri: dataclasses.replace(claim(read.uri, sha="h1"), status=ledger.INGESTED, size=10),
    }
    for requested in (None, [fixed.uri, read.uri]):
        claims, _ = select_claims(DAY, known, [fixed, read], NOW, 30, requested=requested)
        assert {c.path: (c.size, c.modified_at) for c in claims} == {fixed.uri: (99, fixed.modified), read.uri: (10, OLD)}


def test_a_batch_plan_claims_new_and_stranded_files_refuses_large_ones_and_records_escaped_names():
    known = {
        "file:///zone/done.csv": claim("file:///zone/done.csv"),
        "file:///zone/stranded.csv": claim("file:///zone/stranded.csv", status=ledger.CLAIMED),
    }
    files = [landed("done.csv"), landed("stranded.csv"), landed("new.csv"), landed("big.csv", size=500)]
    plan = ledger.plan_batch(DAY, known, files, ["file:///elsewhere/x.csv"], NOW, DAY, 30, max_file_bytes=100)
    assert [c.path for c in plan.selected] == [
        "file:///zone/big.csv", "file:///zone/done.csv", "file:///zone/new.csv", "file:///zone/stranded.csv",
        "file:///elsewhere/x.csv",
    ]
    claimed = {c.path: ledger.status_code(c.status) for c in plan.to_claim}
    assert claimed == {"file:///zone/big.csv": ledger.FILE_TOO_LARGE, "file:///zone/new.csv": None,
                       "file:///elsewhere/x.csv": OUTSIDE, "file:///zone/stranded.csv": ledger.CLAIMED}
    # A past day records no escaped name (it belongs to the day it is discovered).
    assert ledger.plan_batch(DAY - dt.timedelta(days=1), known, files, ["file:///elsewhere/x.csv"], NOW, DAY, 30, 100).to_claim == ()


def test_after_the_claim_a_run_keeps_only_what_the_ledger_gives_its_day():
    plan = ledger.BatchPlan((claim("a"), claim("b")), (), ("c: already claimed by 2026-11-20",))
    known = {"a": claim("a"), "b": claim("b", day=DAY - dt.timedelta(days=1))}  # a concurrent run of another day won b
    mine, skipped = ledger.owned_claims(DAY, plan, known, max_file_bytes=100)
    assert [c.path for c in mine] == ["a"]
    assert skipped == ["c: already claimed by 2026-11-20", f"b: claimed by {DAY - dt.timedelta(days=1)} by a concurrent run"]


def test_a_claimed_file_is_missing_only_when_neither_listed_nor_archived():
    claims = [claim("listed"), claim("archived"), claim("gone"), claim("refused", status=ledger.FILE_TOO_LARGE)]
    archived = {"listed": None, "archived": "arch/archived", "gone": "arch/gone"}
    assert ledger.missing_files(claims, {"listed"}, archived, exists=lambda uri: uri == "arch/archived") == ["gone"]


def test_a_file_read_before_is_hashed_again_when_its_listing_moved():
    def read_before(name, sha="h1", etag=None, status=None):
        return dataclasses.replace(claim(f"file:///zone/{name}", sha=sha, status=status), etag=etag)

    claims = [read_before("same"), read_before("resized"), read_before("touched"), read_before("retagged", etag="e1"),
              read_before("new_claim", sha=None), read_before("dup", status=DUPLICATE), read_before("archived")]
    listing = [landed("same", 1), landed("resized", 2), landed("touched", 1, OLD + dt.timedelta(seconds=1)),
               dataclasses.replace(landed("retagged", 1), etag="e2"), landed("new_claim", 2), landed("dup", 2)]
    changed = ledger.changed_since_read(claims, {f.uri: f for f in listing})
    assert [c.path.rsplit("/", 1)[1] for c in changed] == ["resized", "touched", "retagged"]
    # A side that does not know the ETag or the time (a ledger row of a local file) compares the size alone.
    unknown_time = dataclasses.replace(landed("same", 1), modified=None)
    assert ledger.changed_since_read([read_before("same", etag="e1")], {unknown_time.uri: unknown_time}) == []


def test_a_run_never_writes_back_a_failed_row_that_a_requeue_may_have_deleted():
    failed = claim("f", status=ledger.refusal(ledger.FAILED, "bronze_netflix_titles: ValueError: bad"))
    claims = [claim("a"), failed, claim("d", status=DUPLICATE), claim("o", status=OUTSIDE)]
    assert [c.path for c in ledger.to_record(claims)] == ["a", "d", "o"]


def test_outside_claims_are_never_duplicates():
    marked = mark_duplicates([Claim("x", 0, None, NOW, DAY, status=OUTSIDE)], {})
    assert marked[0].status == OUTSIDE


# ---------------------------------------------------------------- ingestion that never stalls

ODD_NAMES = [
    "caf\udce9.csv",  # Latin-1 é on a UTF-8 file system, as os.listdir returns it
    "lone\ud800high.csv",  # a surrogate no byte decoding produces
    "line\nbreak.csv",
    "q?#%20&.csv",
    "x" * 5000 + ".csv",
    "emoji-\U0001f600.csv",
]


def test_any_name_gets_a_run_key_and_survives_the_cursor():
    files = [landed(name) for name in ODD_NAMES]
    first = decide(files)
    [request] = first.requests
    assert sorted(request.files) == sorted(f.uri for f in files)
    assert request.run_key == decide(list(reversed(files))).requests[0].run_key
    text = first.cursor.dump()
    assert text.isascii() and "\n" not in text
    again = discovery.Cursor.parse(text)
    assert again == first.cursor
    # A key per name, each distinct (surrogates are hashed as themselves, not replaced).
    keys = {discovery.run_key_for("2026-11-24", [f], 0) for f in files}
    assert len(keys) == len(files)
    # The next tick keeps the batch in flight and requests nothing twice.
    assert decide(files, cursor=again).requests == []
    assert "\n" not in first.summary


def test_an_old_or_broken_cursor_is_upgraded_or_reset():
    v1 = json.dumps({"v": 1, "pending": {"landing-2026-11-23-abc": {"files": ["file:///zone/a.csv"],
                     "requested_at": "2026-11-23T23:59:00+00:00"}}, "settling": {}, "generation": 4})
    cursor = discovery.Cursor.parse(v1)
    [batch] = cursor.pending.values()
    assert (batch.files, batch.day, batch.attempts, cursor.generation) == (["file:///zone/a.csv"], "2026-11-23", 0, 4)
    tick = decide([landed("a.csv")], cursor=cursor, status={"landing-2026-11-23-abc": "STARTED"})
    assert tick.requests == [] and "landing-2026-11-23-abc" in tick.cursor.pending
    broken_batches = [
        {"k": {"nope": 1}},
        {"k": {"files": [], "day": "2026-11-24"}},
        {"k": {"files": ["a"], "day": "2026-11-24", "requested_at": "yesterday"}},
        {"k": {"files": ["a"], "day": "2026-11-24", "not_before": "2026-11-24T12:00:00"}},  # naive
    ]
    for broken in ("{", "[]", "null", '{"v": 99}', *(json.dumps({"v": 2, "pending": b}) for b in broken_batches)):
        assert discovery.Cursor.parse(broken) == discovery.Cursor()


def test_backoff_doubles_up_to_its_cap():
    limits = discovery.Limits(retry_base_seconds=60, retry_max_seconds=300)
    assert [discovery.backoff(n, limits).total_seconds() for n in range(0, 6)] == [0, 60, 120, 240, 300, 300]
    assert discovery.backoff(10_000, limits).total_seconds() == 300


def test_no_retry_before_the_backoff_is_over():
    limits = discovery.Limits(retry_base_seconds=60, retry_max_seconds=3600, max_attempts=5)
    files = [landed("a.csv")]
    first = decide(files, limits=limits)
    key = first.requests[0].run_key
    failed_at = NOW + dt.timedelta(minutes=5)
    failed = discovery.decide(
        files, [], set(), first.cursor, failed_at, 30,
        lambda k: discovery.RunOutcome("FAILURE", "run-1", "bronze_netflix_titles: boom") if k == key else None, limits,
    )
    assert failed.requests == [] and failed.metrics["retries_waiting"] == 1
    [(retry_key, batch)] = failed.cursor.pending.items()
    assert (batch.attempts, batch.last_error, batch.last_run_id) == (1, "bronze_netflix_titles: boom", "run-1")
    assert retry_key != key and discovery.Cursor.parse(failed.cursor.dump()) == failed.cursor
    early = decide(files, cursor=failed.cursor, now=failed_at + dt.timedelta(seconds=59), limits=limits)
    assert early.requests == [] and "retries_waiting=1" in early.summary
    due = decide(files, cursor=early.cursor, now=failed_at + dt.timedelta(seconds=60), limits=limits)
    assert [(r.run_key, r.files, r.partition_key) for r in due.requests] == [(retry_key, ["file:///zone/a.csv"], DAY.isoformat())]
    assert due.metrics["retries_requested"] == 1
    # Failing again doubles the wait.
    again_at = failed_at + dt.timedelta(minutes=10)
    again = decide(files, cursor=due.cursor, status={retry_key: "CANCELED"}, now=again_at, limits=limits)
    [batch] = again.cursor.pending.values()
    assert batch.attempts == 2 and discovery._time(batch.not_before) == again_at + dt.timedelta(seconds=120)


def test_an_outage_shorter_than_min_failing_seconds_strands_no_file():
    """Every run fails for 30 minutes (the lake or the cluster is down), then runs work again: the
    batch is retried and split, and its files are ingested once the outage is over, none recorded
    `failed` (counting attempts alone recorded all four at minute 16). A file whose runs still fail
    `min_failing_seconds` after their first failure is recorded `failed`. One tick a minute."""
    files = [landed(f"f{i}.csv", size=10 + i) for i in range(4)]
    every = {f.uri for f in files}
    limits = discovery.Limits(max_attempts=3, retry_base_seconds=60, retry_max_seconds=3600, min_failing_seconds=3600)

    def run(fake, stop, outage_minutes=None):
        cursor, now = discovery.Cursor(), NOW
        for _ in range(200):
            if outage_minutes is not None:
                fake.bad = every if now < NOW + dt.timedelta(minutes=outage_minutes) else set()
            tick, cursor = fake.tick(files, cursor, now, limits)
            if tick.failed or stop(fake, cursor):
                return now
            now += dt.timedelta(minutes=1)
        raise AssertionError("the sensor never settled")

    outage = FakeRuns(set())
    run(outage, lambda fake, cursor: not cursor.pending and fake.claimed == every, outage_minutes=30)
    assert outage.failed_rows == [] and outage.claimed == every
    assert max(len([r for r in outage.runs.values() if f in r]) for f in every) >= 4  # retried through it

    bad = FakeRuns({"file:///zone/f2.csv"})
    gave_up_at = run(bad, lambda fake, cursor: False)
    [row] = bad.failed_rows
    assert row.path == "file:///zone/f2.csv" and gave_up_at - NOW >= dt.timedelta(seconds=limits.min_failing_seconds)
    assert bad.claimed == every  # the three others ingested, the bad one recorded


def test_a_retry_keeps_the_partition_of_its_first_request():
    limits = discovery.Limits(retry_base_seconds=0)
    first = decide([landed("a.csv")], limits=limits)
    tomorrow = NOW + dt.timedelta(days=1)
    retried = decide([landed("a.csv")], cursor=first.cursor, status={first.requests[0].run_key: "FAILURE"},
                     now=tomorrow, limits=limits)
    assert [r.partition_key for r in retried.requests] == [DAY.isoformat()]


class FakeRuns:
    """Runs that end at once: any run holding the bad file fails, the others record their files
    (as bronze does). The sensor records what `decide` gives up on, as landing_zone_sensor does."""

    def __init__(self, bad: set[str]):
        self.bad = bad
        self.claimed: set[str] = set()
        self.runs: dict[str, list[str]] = {}
        self.failed_rows: list = []

    def status(self, key):
        files = self.runs.get(key)
        if files is None:
            return None
        broken = sorted(set(files) & self.bad)
        if broken:
            return discovery.RunOutcome("FAILURE", f"run-{key[-6:]}", f"bronze_netflix_titles: cannot parse {broken[0]}")
        return discovery.RunOutcome("SUCCESS", f"run-{key[-6:]}")

    def tick(self, files, cursor, now, limits):
        tick = discovery.decide(files, [], set(self.claimed), cursor, now, 30, self.status, limits)
        for request in tick.requests:
            assert request.run_key not in self.runs, "a run key is launched once"
            self.runs[request.run_key] = request.files
            if not set(request.files) & self.bad:
                self.claimed |= set(request.files)
        cursor = tick.cursor
        if tick.failed:
            self.failed_rows += tick.failed
            self.claimed |= {f.path for f in tick.failed}
            cursor = discovery.recorded(cursor, [f.path for f in tick.failed])
        return tick, cursor


def test_a_bad_file_is_isolated_by_splitting_then_recorded_failed():
    files = [landed(f"f{i}.csv", size=10 + i) for i in range(8)]
    bad = "file:///zone/f5.csv"
    limits = discovery.Limits(max_attempts=3, retry_base_seconds=60, retry_max_seconds=600)
    fake = FakeRuns({bad})
    cursor, now, ticks = discovery.Cursor(), NOW, []
    for _ in range(60):
        tick, cursor = fake.tick(files, cursor, now, limits)
        ticks.append(tick)
        # Never a file in two batches of the cursor (so never in two runs at once).
        in_cursor = [u for b in cursor.pending.values() for u in b.files]
        assert len(in_cursor) == len(set(in_cursor))
        if not cursor.pending and len(fake.claimed) == len(files):
            break
        now += dt.timedelta(minutes=11)  # past the longest backoff
    assert fake.claimed == {f.uri for f in files} and cursor.pending == {}
    [row] = fake.failed_rows
    assert (row.path, row.size, row.ingest_date) == (bad, 15, DAY)
    assert row.error == f"bronze_netflix_titles: cannot parse {bad}" and row.run_id.startswith("run-")
    assert sum(t.metrics["batches_split"] for t in ticks) == 3  # 8 -> 4 -> 2 -> 1
    assert sum(t.metrics["files_failed"] for t in ticks) == 1
    # The bad file's runs: 2 of 8 files, 2 of 4, 2 of 2, then 3 alone.
    runs_with_bad = [files for files in fake.runs.values() if bad in files]
    assert [len(f) for f in runs_with_bad] == [8, 8, 4, 4, 2, 2, 1, 1, 1]
    # The good files left with their halves: none waited for the bad one's last attempts.
    assert all(len(r) < 8 for r in fake.runs.values() if bad not in r)


def test_a_queued_or_running_batch_is_never_requested_twice():
    files = [landed("a.csv"), landed("b.csv")]
    first = decide(files)
    key = first.requests[0].run_key
    for status in ("QUEUED", "NOT_STARTED", "STARTING", "STARTED", "CANCELING"):
        much_later = decide(files + [landed("c.csv")], cursor=first.cursor, status={key: status},
                            now=NOW + dt.timedelta(days=2))
        assert [r.files for r in much_later.requests] == [["file:///zone/c.csv"]]
        assert much_later.cursor.pending[key].files == ["file:///zone/a.csv", "file:///zone/b.csv"]
    # No run at all yet (the daemon has not launched it): in flight until pending_timeout...
    unseen = decide(files, cursor=first.cursor, now=NOW + dt.timedelta(minutes=59))
    assert unseen.requests == [] and key in unseen.cursor.pending
    # ... then retried like a failed run.
    lost = decide(files, cursor=first.cursor, now=NOW + dt.timedelta(minutes=61))
    [batch] = lost.cursor.pending.values()
    assert batch.attempts == 1 and "no run was started" in batch.last_error
    # Files bronze has recorded leave their batch, even while the rest is running.
    partial = decide(files, claimed={"file:///zone/a.csv"}, cursor=first.cursor, status={key: "STARTED"})
    assert partial.cursor.pending[key].files == ["file:///zone/b.csv"]


def test_the_hourly_cap_holds_runs_back_retries_included():
    limits = discovery.Limits(max_runs_per_hour=2, max_files_per_run=1, retry_base_seconds=0)
    files = [landed(f"f{i}.csv") for i in range(5)]
    first = decide(files, limits=limits)
    assert len(first.requests) == 2 and first.metrics["runs_held_back"] == 3
    assert "runs_held_back=3" in first.summary and "max_runs_per_hour=2 reached" in first.summary
    key, other = (r.run_key for r in first.requests)
    # Half an hour later: the first run failed; its retry and the new files all wait for the cap.
    half = decide(files, cursor=first.cursor, status={key: "FAILURE", other: "STARTED"},
                  now=NOW + dt.timedelta(minutes=30), limits=limits)
    assert half.requests == [] and half.metrics["runs_held_back"] == 4 and half.metrics["retries_waiting"] == 1
    # An hour after the first runs: room for two again, the retry first.
    hour = decide(files, cursor=half.cursor, status={other: "STARTED"}, now=NOW + dt.timedelta(minutes=61), limits=limits)
    assert len(hour.requests) == 2 and hour.metrics["retries_requested"] == 1
    assert hour.requests[0].files == first.requests[0].files
    assert len(hour.cursor.recent_runs) == 2


def test_batches_are_cut_by_bytes_too():
    limits = discovery.Limits(max_files_per_run=3, max_bytes_per_run=100)
    sizes = [40, 40, 40, 200, 10, 10, 10, 10]
    files = [landed(f"f{i}.csv", size=n) for i, n in enumerate(sizes)]
    tick = decide(files, limits=limits)
    assert [[int(u[-5]) for u in r.files] for r in tick.requests] == [[0, 1], [2], [3], [4, 5, 6], [7]]


def test_the_summary_reports_outstanding_files_and_bytes_on_one_line():
    fresh = NOW - dt.timedelta(seconds=1)
    files = [landed("a.csv", 100), landed("b.csv", 20), landed("c.csv", 3, fresh), landed("d.csv", 7)]
    tick = decide(files, claimed={"file:///zone/d.csv"})
    m = tick.metrics
    assert (m["files_outstanding"], m["bytes_outstanding"]) == (3, 123)
    assert (m["files_requested"], m["runs_requested"], m["still_being_written"]) == (2, 1, 1)
    assert "\n" not in tick.summary
    for field in ("files_outstanding=3", "bytes_outstanding=123", "retries_waiting=0", "batches_split=0",
                  "files_failed=0", "runs_held_back=0", "2 requested in 1 run(s)"):
        assert field in tick.summary
    idle = decide(files, claimed={f.uri for f in files})
    assert "0 requested" in idle.summary and "files_outstanding=0" in idle.summary


def test_a_failed_file_is_given_again_until_it_is_recorded():
    limits = discovery.Limits(max_attempts=1, retry_base_seconds=0, min_failing_seconds=0)
    first = decide([landed("a.csv")], limits=limits)
    gave_up = decide([landed("a.csv")], cursor=first.cursor, status={first.requests[0].run_key: "SUCCESS"}, limits=limits)
    [failure] = gave_up.failed
    assert failure.path == "file:///zone/a.csv" and "without recording" in failure.error
    assert gave_up.requests == [] and gave_up.metrics["files_failed"] == 1
    # The ledger write failed: the next tick hands it over again, and requests nothing.
    again = decide([landed("a.csv")], cursor=gave_up.cursor, limits=limits)
    assert [f.path for f in again.failed] == ["file:///zone/a.csv"] and again.requests == []
    assert discovery.recorded(again.cursor, ["file:///zone/a.csv"]).pending == {}
    # Once in the ledger, the batch is done.
    assert decide([landed("a.csv")], claimed={"file:///zone/a.csv"}, cursor=again.cursor).cursor.pending == {}


@pytest.mark.parametrize("name", ["caf\udce9.csv", "lone\ud800high.csv"])
def test_a_file_recorded_under_its_escaped_name_counts_as_claimed(name):
    from netflix_assets.bronze.ledger_store import ledger_path

    uri = f"file:///zone/{name}"
    assert ledger_path(uri).isascii() and ledger_path(uri) != uri
    tick = decide([landed(name)], claimed={ledger_path(uri)})
    assert tick.requests == [] and tick.metrics["files_outstanding"] == 0


# ---------------------------------------------------------------- claims first: stranded claims

YESTERDAY = DAY - dt.timedelta(days=1)


def test_a_stranded_claim_is_requested_again_for_its_own_day_not_one_whose_run_is_alive():
    files = [landed("dead.csv"), landed("lost.csv"), landed("busy.csv"), landed("new.csv")]
    claims = [
        OpenClaim("file:///zone/dead.csv", YESTERDAY, "run-dead"),
        OpenClaim("file:///zone/lost.csv", YESTERDAY, "run-deleted"),  # unknown to the instance
        OpenClaim("file:///zone/busy.csv", YESTERDAY, "run-busy"),
        OpenClaim("file:///zone/gone.csv", YESTERDAY, "run-dead"),  # no longer listed: left to a re-run of its day
    ]
    runs = {"run-dead": "FAILURE", "run-busy": "STARTED"}
    limits = discovery.Limits(retry_base_seconds=0)
    tick = decide(files, open_claims=claims, runs=runs, limits=limits)
    assert sorted((r.partition_key, r.files) for r in tick.requests) == [
        (YESTERDAY.isoformat(), ["file:///zone/dead.csv"]),
        (YESTERDAY.isoformat(), ["file:///zone/lost.csv"]),
        (DAY.isoformat(), ["file:///zone/new.csv"]),
    ]
    dead = next(b for b in tick.cursor.pending.values() if b.files == ["file:///zone/dead.csv"])
    assert (dead.attempts, dead.last_run_id) == (1, "run-dead") and "stranded claim" in dead.last_error
    assert tick.metrics["stranded_claims"] == 2 and "2 stranded claim(s)" in tick.summary and str(YESTERDAY) in tick.summary
    # Next tick: the claims are in batches of the cursor (in flight): not requested twice.
    status = {r.run_key: "STARTED" for r in tick.requests}
    assert decide(files, cursor=tick.cursor, status=status, open_claims=claims, runs=runs, limits=limits).requests == []
    # A stranded claim is a failed attempt: with max_attempts=1 the file is recorded `failed`, for its day.
    gave_up = decide(files[:1], open_claims=claims[:1], runs=runs, limits=discovery.Limits(max_attempts=1, min_failing_seconds=0))
    assert [(f.path, f.ingest_date, f.run_id) for f in gave_up.failed] == [("file:///zone/dead.csv", YESTERDAY, "run-dead")]
    assert gave_up.requests == []


def test_a_claim_of_a_day_with_no_partition_is_named_not_requested():
    # Dagster refuses a whole tick for one unknown partition: such a claim is left as it is, with a
    # warning saying how to read it again, and the other files are requested.
    files = [landed("old.csv"), landed("requeued.csv"), landed("new.csv")]
    claims = [OpenClaim("file:///zone/old.csv", YESTERDAY, "run-gone"), OpenClaim("file:///zone/requeued.csv", YESTERDAY, None)]
    tick = decide(files, open_claims=claims, limits=discovery.Limits(retry_base_seconds=0), first_day=DAY)
    assert [(r.partition_key, r.files) for r in tick.requests] == [(DAY.isoformat(), ["file:///zone/new.csv"])]
    assert tick.metrics["claims_before_first_partition"] == 2 and tick.cursor.pending.keys() == {tick.requests[0].run_key}
    assert f"2 file(s) of a day before the first partition ({DAY})" in tick.summary
    assert f"{YESTERDAY}: file:///zone/old.csv, file:///zone/requeued.csv" in tick.summary
    assert f"NETFLIX_PARTITIONS_START to {YESTERDAY} or earlier" in tick.summary
    # A batch of such a day still in the cursor (the setting moved while it was in flight) is not
    # retried under it: its claimed file is named, its unclaimed one is a new file of today.
    old = decide([landed("old.csv")], open_claims=claims[:1], limits=discovery.Limits(retry_base_seconds=0))
    assert [r.partition_key for r in old.requests] == [YESTERDAY.isoformat()]
    status = {old.requests[0].run_key: "FAILURE"}
    moved = decide(files, cursor=old.cursor, status=status, open_claims=claims[:1], runs={"run-gone": "FAILURE"},
                   limits=discovery.Limits(retry_base_seconds=0), first_day=DAY)
    assert sorted((r.partition_key, sorted(r.files)) for r in moved.requests) == [
        (DAY.isoformat(), ["file:///zone/new.csv", "file:///zone/requeued.csv"])]
    assert moved.metrics["claims_before_first_partition"] == 1 and "file:///zone/old.csv" in moved.summary


def test_a_claimed_file_stays_in_its_batch_until_its_final_status():
    limits = discovery.Limits(retry_base_seconds=0)
    first = decide([landed("a.csv"), landed("b.csv")], limits=limits)
    [request] = first.requests
    claims = [OpenClaim("file:///zone/a.csv", DAY, "run-1"), OpenClaim("file:///zone/b.csv", YESTERDAY, "run-0")]
    # Its run claimed a.csv and is still at work; b.csv is yesterday's (a run of that day took it first).
    running = decide([landed("a.csv"), landed("b.csv")], cursor=first.cursor, status={request.run_key: "STARTED"},
                     open_claims=claims, runs={"run-1": "STARTED", "run-0": "STARTED"}, limits=limits)
    assert running.requests == [] and running.cursor.pending[request.run_key].files == ["file:///zone/a.csv"]
    # The run failed after claiming: a retry of the batch (not a stranded claim, not done).
    failed = decide([landed("a.csv"), landed("b.csv")], cursor=running.cursor, status={request.run_key: "FAILURE"},
                    open_claims=claims, runs={"run-1": "FAILURE", "run-0": "STARTED"}, limits=limits)
    assert [(r.partition_key, r.files) for r in failed.requests] == [(DAY.isoformat(), ["file:///zone/a.csv"])]
    assert failed.metrics["stranded_claims"] == 0 and failed.metrics["retries_requested"] == 1
    # Once its final status is written, the batch is done.
    done = decide([landed("a.csv"), landed("b.csv")], claimed={"file:///zone/a.csv"}, cursor=failed.cursor,
                  open_claims=claims[1:], runs={"run-0": "STARTED"}, limits=limits)
    assert done.cursor.pending == {} and done.requests == []
