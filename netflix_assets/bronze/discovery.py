"""What the landing-zone sensor decides on each tick, as plain functions.

State lives in two places, like Auto Loader's checkpoint:
- the ledger (`bronze/_ingested_files`, written by bronze): files already claimed;
- the sensor cursor (small JSON): batches requested but not yet in the ledger,
  and the fingerprints of new files that were still changing on the last tick.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass, field
from typing import Callable, Optional, Sequence

from ..resources.landing import LandedFile
from .ledger import is_settled

CURSOR_VERSION = 1
# Run statuses after which a requested batch that never reached the ledger is requested again.
ENDED_WITHOUT_LEDGER = ("FAILURE", "CANCELED", "SUCCESS")


@dataclass
class Batch:
    files: list[str]
    requested_at: str


@dataclass
class Cursor:
    # run_key -> batch requested and not yet recorded in the ledger
    pending: dict[str, Batch] = field(default_factory=dict)
    # uri -> fingerprint seen on the last tick, for new files not yet settled
    settling: dict[str, str] = field(default_factory=dict)
    # bumped when a batch is given up (failed run): its files get a new run_key
    generation: int = 0

    @classmethod
    def parse(cls, text: Optional[str]) -> "Cursor":
        if not text:
            return cls()
        raw = json.loads(text)
        if raw.get("v") != CURSOR_VERSION:
            return cls()
        return cls(
            pending={k: Batch(**v) for k, v in raw.get("pending", {}).items()},
            settling=dict(raw.get("settling", {})),
            generation=int(raw.get("generation", 0)),
        )

    def dump(self) -> str:
        return json.dumps(
            {
                "v": CURSOR_VERSION,
                "pending": {k: {"files": b.files, "requested_at": b.requested_at} for k, b in sorted(self.pending.items())},
                "settling": dict(sorted(self.settling.items())),
                "generation": self.generation,
            },
            separators=(",", ":"),
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
    waiting: list[str]
    summary: str


def run_key_for(day: str, files: Sequence[LandedFile], generation: int) -> str:
    """Same files (and versions) on the same day -> same key: a re-evaluated tick
    never launches twice. A new generation after a failed run gets a new key."""
    digest = hashlib.sha256()
    for f in sorted(files, key=lambda f: f.uri):
        digest.update(f"{f.uri}\0{f.fingerprint}\n".encode())
    digest.update(f"{generation}".encode())
    return f"landing-{day}-{digest.hexdigest()[:20]}"


def decide(
    landed: Sequence[LandedFile],
    escaped: Sequence[str],
    claimed: set[str],
    cursor: Cursor,
    now: dt.datetime,
    settle_seconds: float,
    run_status: Callable[[str], Optional[str]],
    max_files_per_run: int = 500,
    pending_timeout: dt.timedelta = dt.timedelta(hours=1),
) -> Tick:
    """One sensor tick. Cost: one pass over the listing with set lookups; only new
    files (not in the ledger, not pending) are looked at further.

    A new file is requested once it is settled: unchanged since the last tick, or
    not modified for `settle_seconds`. Names that escape the zone are requested
    too: bronze records them as refused without opening them.
    """
    out = Cursor(generation=cursor.generation)
    # Pending batches: done once their files are in the ledger; requested again if
    # their run ended without recording them (or never started within the timeout).
    for key, batch in cursor.pending.items():
        if all(uri in claimed for uri in batch.files):
            continue
        status = run_status(key)
        age = now - dt.datetime.fromisoformat(batch.requested_at)
        if status in ENDED_WITHOUT_LEDGER or (status is None and age > pending_timeout):
            out.generation += 1
            continue
        out.pending[key] = batch
    in_flight = {uri for batch in out.pending.values() for uri in batch.files}

    ready: list[LandedFile] = []
    waiting: list[str] = []
    outside = set(escaped)
    candidates = list(landed) + [LandedFile(uri, 0, None) for uri in sorted(outside)]
    for f in candidates:
        if f.uri in claimed or f.uri in in_flight:
            continue
        if f.uri in outside or is_settled(f, now, settle_seconds) or cursor.settling.get(f.uri) == f.fingerprint:
            ready.append(f)
        else:
            out.settling[f.uri] = f.fingerprint
            waiting.append(f.uri)

    day = now.date().isoformat()
    requests = []
    for start in range(0, len(ready), max_files_per_run):
        chunk = ready[start : start + max_files_per_run]
        key = run_key_for(day, chunk, out.generation)
        files = [f.uri for f in chunk]
        requests.append(Request(key, day, files))
        out.pending[key] = Batch(files, now.isoformat())
    summary = (
        f"{len(landed)} landed, {len(claimed)} in the ledger, {len(in_flight)} in flight, "
        f"{len(ready)} requested in {len(requests)} run(s), {len(waiting)} still being written"
    )
    return Tick(requests, out, waiting, summary)
