"""What the landing-zone sensor decides on each tick, as plain functions.

State lives in two places, like Auto Loader's checkpoint:
- the ledger (`bronze/_ingested_files`, written by bronze): files claimed by a day, with
  their final status once their run has stored them (`claimed` until then);
- the sensor cursor (small JSON): batches requested or waiting to be retried and not yet
  given a final status in the ledger, the fingerprints of new files that were still
  changing on the last tick, and the times of the runs requested in the last hour.

Ingestion never stalls on one file: a batch whose run ends without recording its files
is retried after a backoff, split in halves after two failures (so a bad file ends up
alone), and a file alone that keeps failing is recorded `failed` in the ledger, with its
last error, so the sensor stops asking for it (`ledger_store requeue` gives it back).

Stranded claims: a row still `claimed` whose run is no longer alive (ended, or unknown to
the instance) and whose file is in no batch of the cursor (the run was not the sensor's, or
the cursor was lost) is a failed attempt of that file: it becomes a batch again, of the
row's own day (never today's: the file belongs to that day), and goes through the same
retries, splits and `failed`. A stranded claim whose file is no longer listed is left to a
re-run of its day.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Optional, Sequence, Union

from ..resources.landing import LandedFile, LandingZoneResource
from .ledger import is_settled
from .ledger_store import FailedFile, OpenClaim, ledger_path

CURSOR_VERSION = 2
# Run statuses after which a requested batch that never reached the ledger is retried;
# any other status (QUEUED, STARTING, STARTED, CANCELING...) keeps the batch in flight.
ENDED_WITHOUT_LEDGER = ("FAILURE", "CANCELED", "SUCCESS")
# Run statuses of a run still at work: its `claimed` rows are not stranded.
ALIVE = ("NOT_STARTED", "QUEUED", "STARTING", "STARTED", "CANCELING")
# Failed runs of a batch of several files before it is split in halves.
SPLIT_AFTER = 2
HOUR = dt.timedelta(hours=1)


def _default(name: str) -> Any:
    # One place for the defaults: the resource's fields.
    return LandingZoneResource.model_fields[name].default


@dataclass(frozen=True)
class Limits:
    """The sensor's settings of LandingZoneResource, as a plain value for `decide`."""

    max_files_per_run: int = _default("max_files_per_run")
    max_bytes_per_run: int = _default("max_bytes_per_run")
    max_runs_per_hour: int = _default("max_runs_per_hour")
    retry_base_seconds: float = _default("retry_base_seconds")
    retry_max_seconds: float = _default("retry_max_seconds")
    max_attempts: int = _default("max_attempts")
    min_failing_seconds: float = _default("min_failing_seconds")

    @classmethod
    def of(cls, landing: LandingZoneResource) -> "Limits":
        return cls(**{name: getattr(landing, name) for name in cls.__dataclass_fields__})


@dataclass(frozen=True)
class RunOutcome:
    """What the sensor knows of the run requested under a run key."""

    status: str  # a DagsterRunStatus value
    run_id: Optional[str] = None
    error: Optional[str] = None  # for a failed run: its first step failure


# What `decide` asks about a run key: None when no run has it (yet). A bare status string
# is accepted too (fakes in tests and benchmarks).
RunStatus = Callable[[str], Union[RunOutcome, str, None]]
# What `decide` asks about the run of a `claimed` row, by run id: its DagsterRunStatus value,
# None when the instance does not know it.
RunStatusById = Callable[[str], Optional[str]]


@dataclass
class Batch:
    files: list[str]
    day: str  # the partition: the UTC day the files were first requested
    requested_at: Optional[str] = None  # when its run was requested; None: waiting to be
    attempts: int = 0  # runs of these files that ended without recording them
    not_before: Optional[str] = None  # no retry before this time (backoff)
    last_error: Optional[str] = None
    last_run_id: Optional[str] = None
    failed: bool = False  # retries exhausted: its one file is to be recorded `failed`
    failing_since: Optional[str] = None  # when a tick first saw its files' run fail (kept by retries and splits)

    def to_json(self) -> dict:
        # Fields at their default are left out: a cursor of 10,000 pending files stays small.
        return {k: v for k, v in self.__dict__.items() if k in ("files", "day") or v != _BATCH_DEFAULTS[k]}


_BATCH_DEFAULTS = {name: f.default for name, f in Batch.__dataclass_fields__.items()}


@dataclass
class Cursor:
    # run_key -> batch not yet recorded in the ledger (in flight, waiting for a retry, or failed)
    pending: dict[str, Batch] = field(default_factory=dict)
    # uri -> fingerprint seen on the last tick, for new files not yet settled
    settling: dict[str, str] = field(default_factory=dict)
    # uri -> when a tick first saw that fingerprint: unchanged across ticks settles a file only once
    # `settle_seconds` have passed since (a producer pausing longer than a tick is still writing)
    settling_since: dict[str, str] = field(default_factory=dict)
    # bumped whenever a batch gets a new run key (retry, split): Dagster launches a run key once
    generation: int = 0
    # when the runs of the last hour were requested (the hourly cap)
    recent_runs: list[str] = field(default_factory=list)

    @classmethod
    def parse(cls, text: Optional[str]) -> "Cursor":
        """The cursor of the last tick. One of version 1 is upgraded (its batches in flight);
        anything unreadable starts afresh, which is safe: files not in the ledger are found
        again, and a run key already used is seen by its run's status on the next tick."""
        if not text:
            return cls()
        try:
            raw = json.loads(text)
            if raw.get("v") == 1:
                return cls._from_v1(raw)
            if raw.get("v") != CURSOR_VERSION:
                return cls()
            cursor = cls(
                pending={str(k): Batch(**v) for k, v in raw.get("pending", {}).items()},
                settling=dict(raw.get("settling", {})),
                settling_since={str(k): str(v) for k, v in raw.get("settling_since", {}).items()},
                generation=int(raw.get("generation", 0)),
                recent_runs=[str(t) for t in raw.get("recent_runs", [])],
            )
            cursor._check()
            return cursor
        except (ValueError, TypeError, AttributeError, KeyError):
            return cls()

    def _check(self) -> None:
        """ValueError/TypeError unless every batch has files, a day and aware times: `decide`
        then cannot fail on a cursor it did not write."""
        times = list(self.recent_runs) + list(self.settling_since.values())
        for batch in self.pending.values():
            if not batch.files or not all(isinstance(u, str) for u in batch.files):
                raise ValueError("a batch without files")
            dt.date.fromisoformat(batch.day)
            times += [t for t in (batch.requested_at, batch.not_before) if t is not None]
        if any(_time(t).tzinfo is None for t in times):
            raise ValueError("a naive time")

    @classmethod
    def _from_v1(cls, raw: dict) -> "Cursor":
        pending = {}
        for key, value in raw.get("pending", {}).items():
            requested_at = str(value["requested_at"])
            day = dt.datetime.fromisoformat(requested_at).date().isoformat()
            pending[key] = Batch(list(value["files"]), day, requested_at=requested_at)
        cursor = cls(
            pending=pending,
            settling=dict(raw.get("settling", {})),
            generation=int(raw.get("generation", 0)),
            recent_runs=sorted(b.requested_at for b in pending.values() if b.requested_at),
        )
        cursor._check()
        return cursor

    def dump(self) -> str:
        """Compact JSON, ASCII only (`\\uXXXX` escapes): any name, even one with lone
        surrogates from a non-UTF-8 file system, round-trips through any cursor store."""
        return json.dumps(
            {
                "v": CURSOR_VERSION,
                "pending": {k: b.to_json() for k, b in sorted(self.pending.items())},
                "settling": dict(sorted(self.settling.items())),
                "settling_since": dict(sorted(self.settling_since.items())),
                "generation": self.generation,
                "recent_runs": self.recent_runs,
            },
            separators=(",", ":"),
            ensure_ascii=True,
        )


@dataclass(frozen=True)
class Request:
    run_key: str
    partition_key: str
    files: list[str]


@dataclass(frozen=True)
class Tick:
    requests: list[Request]
    cursor: Cursor
    waiting: list[str]  # new files still being written
    summary: str  # one line: logged, and the skip reason of a tick without runs
    failed: list[FailedFile] = field(default_factory=list)  # for the sensor to record in the ledger
    metrics: dict[str, int] = field(default_factory=dict)


def _utf8(text: str) -> bytes:
    # Lone surrogates (undecodable bytes of a listed name) encode as themselves: any str hashes.
    return text.encode("utf-8", "surrogatepass")


def run_key_for(day: str, files: Sequence[LandedFile], generation: int) -> str:
    """Same files (and versions) on the same day -> same key: a re-evaluated tick
    never launches twice. A retry or a split gets a new generation, hence a new key.
    Any name hashes, whatever its characters (surrogates, newlines, `?#%`, length)."""
    digest = hashlib.sha256()
    for f in sorted(files, key=lambda f: _utf8(f.uri)):
        digest.update(_utf8(f"{f.uri}\0{f.fingerprint}\n"))
    digest.update(_utf8(f"{generation}"))
    return f"landing-{day}-{digest.hexdigest()[:20]}"


def backoff(attempts: int, limits: Limits) -> dt.timedelta:
    """Wait before attempt `attempts + 1`: doubles from `retry_base_seconds`, capped at
    `retry_max_seconds`, so a lake or cluster outage is not hammered by retries."""
    if attempts <= 0:
        return dt.timedelta(0)
    seconds = min(limits.retry_base_seconds * 2 ** min(attempts - 1, 62), limits.retry_max_seconds)
    return dt.timedelta(seconds=seconds)


def cut_batches(files: Sequence[LandedFile], limits: Limits) -> list[list[LandedFile]]:
    """Consecutive batches of at most `max_files_per_run` files and `max_bytes_per_run` bytes;
    a file larger than the byte cap is a batch of its own (bronze refuses or reads it alone)."""
    batches: list[list[LandedFile]] = []
    current: list[LandedFile] = []
    size = 0
    for f in files:
        if current and (len(current) >= limits.max_files_per_run or size + f.size > limits.max_bytes_per_run):
            batches.append(current)
            current, size = [], 0
        current.append(f)
        size += f.size
    if current:
        batches.append(current)
    return batches


def _outcome(value: Union[RunOutcome, str, None]) -> Optional[RunOutcome]:
    return RunOutcome(value) if isinstance(value, str) else value


def _time(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


def after_failure(batch: Batch, outcome: RunOutcome, now: dt.datetime, limits: Limits) -> list[Batch]:
    """The batches that follow a run of `batch` that ended without recording its files:
    - a one-file batch that has failed `max_attempts` times, the first of its files' failures at
      least `min_failing_seconds` ago: that file, to be recorded `failed`;
    - a batch of several files that has failed SPLIT_AFTER times: its two halves, attempts
      reset, so retries converge on the bad file instead of holding the good ones back;
    - otherwise the same files, retried after the backoff.
    A bad file fails its runs on every attempt, so it is isolated and recorded whatever the wait;
    an outage fails every run for a while: counting attempts alone (3 at 60 s and 120 s apart)
    would record every file landed during a few minutes of it `failed`, until re-queued by hand."""
    attempts = batch.attempts + 1
    error = outcome.error or f"run ended {outcome.status} without recording its files"
    since = batch.failing_since or now.isoformat()
    common = dict(day=batch.day, last_error=error, last_run_id=outcome.run_id, failing_since=since)
    not_before = (now + backoff(attempts, limits)).isoformat()
    if len(batch.files) > 1 and attempts >= min(SPLIT_AFTER, limits.max_attempts):
        half = (len(batch.files) + 1) // 2
        return [Batch(part, not_before=not_before, **common) for part in (batch.files[:half], batch.files[half:])]
    failing_long_enough = now - _time(since) >= dt.timedelta(seconds=limits.min_failing_seconds)
    if len(batch.files) == 1 and attempts >= limits.max_attempts and failing_long_enough:
        return [Batch(batch.files, attempts=attempts, failed=True, **common)]
    return [Batch(batch.files, attempts=attempts, not_before=not_before, **common)]


def recorded(cursor: Cursor, paths: Sequence[str]) -> Cursor:
    """The cursor once the sensor has written the `failed` rows of `paths`: their batches are done."""
    done = set(paths)
    kept = {k: b for k, b in cursor.pending.items() if not (b.failed and ledger_path(b.files[0]) in done)}
    return replace(cursor, pending=kept)


def decide(
    landed: Sequence[LandedFile],
    escaped: Sequence[str],
    claimed: set[str],
    cursor: Cursor,
    now: dt.datetime,
    settle_seconds: float,
    run_status: RunStatus,
    limits: Limits = Limits(),
    pending_timeout: dt.timedelta = HOUR,
    open_claims: Sequence[OpenClaim] = (),
    claim_run_status: Optional[RunStatusById] = None,
    today: Optional[dt.date] = None,
    first_day: Optional[dt.date] = None,
) -> Tick:
    """One sensor tick. Cost: one pass over the listing with set lookups; only new
    files (not in the ledger, not in the cursor) are looked at further, and only the
    runs of the cursor's requested batches, and of the stranded claims' candidates
    (`open_claims` in no batch, their file listed), are looked up.

    `claimed`: every path of the ledger; `open_claims`: its rows still `claimed`, whose
    runs `claim_run_status` gives (required with `open_claims`). A file is done once its
    row has a final status; a claimed file is never new (it belongs to its day).

    A new file is requested once it is settled: unchanged since the last tick, or
    not modified for `settle_seconds`. Names that escape the zone are requested
    too: bronze records them as refused without opening them. A file is in at most
    one batch of the cursor, so never in two runs at once.

    New files are requested for partition `today` (the sensor passes `clock.today()`; by
    default `now`'s UTC date); `now` times file ages, backoffs and the hourly cap.

    `first_day`: the first partition. A claim of an earlier day (a lake older than the instance,
    a requeued file of such a day) cannot be requested: Dagster refuses the whole tick for one
    unknown partition, every good file's request with it, tick after tick. It is named in the
    summary and left as it is.
    """
    if open_claims and claim_run_status is None:
        raise ValueError("open_claims need claim_run_status")
    listed: dict[str, LandedFile] = {f.uri: f for f in landed}
    outside = set(escaped)
    for uri in sorted(outside):
        listed.setdefault(uri, LandedFile(uri, 0, None))

    recent = [t for t in cursor.recent_runs if now - _time(t) < HOUR]
    out = Cursor(generation=cursor.generation, recent_runs=recent)

    def is_claimed(uri: str) -> bool:
        return uri in claimed or ledger_path(uri) in claimed

    open_by_path = {c.path: c for c in open_claims}

    def open_claim(uri: str) -> Optional[OpenClaim]:
        return (open_by_path.get(uri) or open_by_path.get(ledger_path(uri))) if open_by_path else None

    def done(uri: str) -> bool:
        return is_claimed(uri) and open_claim(uri) is None

    def claimed_by_another_day(uri: str, day: str) -> bool:
        # Its claim's day reads it (a stranded claim, below): never a batch of another day.
        claim = open_claim(uri)
        return claim is not None and claim.ingest_date.isoformat() != day

    def new_key(day: str, files: Sequence[str]) -> str:
        out.generation += 1
        return run_key_for(day, [listed.get(u) or LandedFile(u, 0, None) for u in files], out.generation)

    failed: list[FailedFile] = []
    splits = 0
    before_start: dict[str, list[str]] = {}  # day -> files of a day with no partition (`first_day`)

    def no_partition(day: str) -> bool:
        return first_day is not None and dt.date.fromisoformat(day) < first_day

    # 1. The cursor's batches: done once their files have a final status in the ledger; kept
    #    while their run is queued or running; after a run that ended without recording them
    #    (none, or only their claims), retried.
    for key, batch in sorted(cursor.pending.items()):
        files = [u for u in batch.files if not done(u) and not claimed_by_another_day(u, batch.day)]
        if not files:
            continue
        if no_partition(batch.day):
            # NETFLIX_PARTITIONS_START moved past it while it was in flight: its claimed files are
            # named below (stranded claims), its unclaimed ones are new files again, today's.
            continue
        batch = replace(batch, files=files)
        if batch.requested_at is not None:
            outcome = _outcome(run_status(key))
            if outcome is None and now - _time(batch.requested_at) > pending_timeout:
                # The daemon never created the run (or it was deleted): as good as failed.
                outcome = RunOutcome("MISSING", None, f"no run was started within {pending_timeout}")
            elif outcome is None or outcome.status not in ENDED_WITHOUT_LEDGER:
                out.pending[key] = batch
                continue
            # Files gone from the zone are not outstanding any more: they leave the batch.
            batch = replace(batch, files=[u for u in files if u in listed])
            if not batch.files:
                continue
            followers = after_failure(batch, outcome, now, limits)
            splits += len(followers) > 1
            for follower in followers:
                out.pending[new_key(follower.day, follower.files)] = follower
            continue
        batch = replace(batch, files=[u for u in files if u in listed])
        if batch.files:
            out.pending[key] = batch

    # 1b. Stranded claims (rows `claimed` by a run no longer alive, their file in no batch and
    #     still listed): a failed attempt of a batch of their own day, per day and run.
    #     A row `claimed` with no run (`make requeue` of a `failed` file) is a new batch of its own
    #     day with fresh attempts.
    stranded: dict[tuple[str, str], list[LandedFile]] = {}
    requeued: dict[str, list[LandedFile]] = {}
    if open_by_path:
        batched = {ledger_path(u) for b in out.pending.values() for u in b.files}
        by_ledger_path: Optional[dict[str, str]] = None
        statuses: dict[str, Optional[str]] = {}
        for claim in sorted(open_claims, key=lambda c: c.path):
            if claim.path in batched:
                continue
            uri = claim.path if claim.path in listed else None
            if uri is None:  # a listed name with undecodable bytes: the ledger holds it escaped
                if by_ledger_path is None:
                    by_ledger_path = {ledger_path(u): u for u in listed if not u.isascii()}
                uri = by_ledger_path.get(claim.path)
            if uri is None:
                continue
            if no_partition(claim.ingest_date.isoformat()):
                before_start.setdefault(claim.ingest_date.isoformat(), []).append(claim.path)
                continue
            if not claim.run_id:
                requeued.setdefault(claim.ingest_date.isoformat(), []).append(listed[uri])
                continue
            run_id = claim.run_id
            if run_id not in statuses:
                statuses[run_id] = claim_run_status(run_id) if run_id else None
            if statuses[run_id] not in ALIVE:
                stranded.setdefault((claim.ingest_date.isoformat(), run_id), []).append(listed[uri])
    for (day_of_claim, run_id), files_of_run in sorted(stranded.items()):
        state = statuses[run_id] or "unknown to the instance"
        outcome = RunOutcome(
            state, run_id or None, f"stranded claim: run {run_id or '?'} ({state}) left it `claimed`"
        )
        for chunk in cut_batches(files_of_run, limits):
            followers = after_failure(Batch([f.uri for f in chunk], day_of_claim), outcome, now, limits)
            splits += len(followers) > 1
            for follower in followers:
                out.pending[new_key(follower.day, follower.files)] = follower
    for day_of_claim, files_of_day in sorted(requeued.items()):
        for chunk in cut_batches(files_of_day, limits):
            out.pending[new_key(day_of_claim, [f.uri for f in chunk])] = Batch([f.uri for f in chunk], day_of_claim)
    stranded_files = sum(len(files) for files in stranded.values())
    for batch in out.pending.values():
        if batch.failed:
            f = listed[batch.files[0]]
            failed.append(
                FailedFile(f.uri, f.size, f.modified, dt.date.fromisoformat(batch.day), batch.last_run_id,
                           batch.last_error or "failed", etag=f.etag)
            )
    in_cursor = {uri for batch in out.pending.values() for uri in batch.files}
    in_flight = sum(len(b.files) for b in out.pending.values() if b.requested_at is not None)

    # 2. Retries whose backoff is over, oldest first, within the hourly cap.
    budget = max(0, limits.max_runs_per_hour - len(out.recent_runs))
    requests: list[Request] = []
    held_back = 0

    def request(key: str, batch: Batch) -> None:
        nonlocal budget
        batch.requested_at = now.isoformat()
        out.recent_runs.append(batch.requested_at)
        requests.append(Request(key, batch.day, list(batch.files)))
        budget -= 1

    due = [
        (batch.not_before or "", key)
        for key, batch in out.pending.items()
        if batch.requested_at is None
        and not batch.failed
        and (batch.not_before is None or _time(batch.not_before) <= now)
    ]
    for _, key in sorted(due):
        if budget > 0:
            request(key, out.pending[key])
        else:
            held_back += 1
    retried = len(requests)

    # 3. New files: settled ones cut into batches, within what is left of the cap.
    ready: list[LandedFile] = []
    waiting: list[str] = []
    outstanding: list[LandedFile] = []
    for f in listed.values():
        if is_claimed(f.uri):
            if open_by_path and open_claim(f.uri) is not None:
                outstanding.append(f)  # claimed, not stored yet
            continue
        outstanding.append(f)
        if f.uri in in_cursor:
            continue
        # Unchanged since a tick `settle_seconds` ago (a store without modification times, or
        # one whose times say little): as settled as an old modification time.
        since = cursor.settling_since.get(f.uri) if cursor.settling.get(f.uri) == f.fingerprint else None
        steady = since is not None and (now - _time(since)).total_seconds() >= settle_seconds
        if f.uri in outside or is_settled(f, now, settle_seconds) or steady:
            ready.append(f)
        else:
            out.settling[f.uri] = f.fingerprint
            out.settling_since[f.uri] = since or now.isoformat()
            waiting.append(f.uri)
    day = (today or now.date()).isoformat()
    for chunk in cut_batches(ready, limits):
        if budget > 0:
            key = run_key_for(day, chunk, out.generation)
            out.pending[key] = Batch([f.uri for f in chunk], day)
            request(key, out.pending[key])
        else:
            held_back += 1
            # Settled now: still settled on the tick that has room for them.
            out.settling.update({f.uri: f.fingerprint for f in chunk})
            settled_since = (now - dt.timedelta(seconds=settle_seconds)).isoformat()
            out.settling_since.update({f.uri: settled_since for f in chunk})

    metrics = {
        "landed": len(landed),
        "in_ledger": len(claimed),
        "in_flight": in_flight,
        "files_requested": sum(len(r.files) for r in requests),
        "runs_requested": len(requests),
        "retries_requested": retried,
        "still_being_written": len(waiting),
        "files_outstanding": len(outstanding),
        "bytes_outstanding": sum(f.size for f in outstanding),
        "retries_waiting": sum(1 for b in out.pending.values() if b.requested_at is None and not b.failed),
        "batches_split": splits,
        "files_failed": len(failed),
        "runs_held_back": held_back,
        "stranded_claims": stranded_files,
        "claims_before_first_partition": sum(len(paths) for paths in before_start.values()),
    }
    summary = (
        f"{metrics['landed']} landed, {metrics['in_ledger']} in the ledger, {metrics['in_flight']} in flight, "
        f"{metrics['files_requested']} requested in {metrics['runs_requested']} run(s) "
        f"({metrics['retries_requested']} retries), {metrics['still_being_written']} still being written; "
        + " ".join(
            f"{name}={metrics[name]}"
            for name in ("files_outstanding", "bytes_outstanding", "retries_waiting", "batches_split",
                         "files_failed", "runs_held_back")
        )
        + (f" (max_runs_per_hour={limits.max_runs_per_hour} reached: the rest wait)" if held_back else "")
        + (
            f"; {stranded_files} stranded claim(s) (their run is gone) re-requested for their own day "
            f"({', '.join(sorted({day for day, _ in stranded}))}) as a retry"
            if stranded_files
            else ""
        )
        + (
            f"; {metrics['claims_before_first_partition']} file(s) of a day before the first partition "
            f"({first_day}) not requested: "
            + ", ".join(f"{day}: {', '.join(paths[:5])}" + (" ..." if len(paths) > 5 else "")
                        for day, paths in sorted(before_start.items()))
            + f". Set NETFLIX_PARTITIONS_START to {min(before_start)} or earlier to read them again"
            if before_start
            else ""
        )
    )
    return Tick(requests, out, waiting, summary, failed, metrics)
