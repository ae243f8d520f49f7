"""The exactly-once ledger of landed titles files (`<lake>/bronze/_ingested_files`).

Like Auto Loader's checkpoint, it is the ingestion's own state, written by the
bronze step in the same run as bronze (not a separately selectable asset, so
the two cannot drift apart). It is still a plain Delta table anyone can query:
one row per file with its size, modification time, ETag, content hash, the
day it belongs to, the run that read it and its status.

Rules:
- A file belongs to the UTC day it was first discovered; bronze[D] reads
  exactly the files of D, and re-materializing D re-reads those files only.
- A path is ingested once (as Auto Loader with `allowOverwrites=false`): a
  later change to an ingested file is not read again; land a new name. A
  re-run of its day reads the bytes the ledger hashed (from the archive when
  the name holds other bytes since: `changed_since_read`) or fails, never new ones.
- Same bytes under another name: recorded `duplicate` (with `duplicate_of`)
  and not read; the earliest discovered copy is the one ingested.

Claims come first (a write-ahead log, like a Structured Streaming offset log): a run
inserts a `claimed` row per new file with one conditional MERGE on `path` before it
writes any bronze row, and sets the file's final status after its rows are stored. Two
runs (of one day or of two days) that race for a file both MERGE; Delta lets one commit
and makes the other retry, which then finds the row and does not insert. So a path is
claimed by exactly one day whatever crashes or overlaps, and a `claimed` row whose run is
gone is work to redo for that day (a re-run of the day reads it; the landing-zone sensor
requests it again), never a file to give to another day.

Paths are stored relative to the landing zone's root (files outside it, absolute), so a
lake and its landing zone copied or moved together (azcopy of prod into dev) keep their
ledger: `to_ledger_path` / `from_ledger_path` translate, with the root of the day.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace
from typing import Callable, Iterable, Optional, Sequence

from ..resources.landing import INVALID_NAME, NOT_A_REGULAR_FILE, LandedFile  # decided from the listing
from ..transforms.csv_records import CHANGED_DURING_READ, UNREADABLE  # noqa: F401 - statuses of the ledger

LEDGER_TABLE = "_ingested_files"
LEDGER_SCHEMA = (
    "path string, size long, modified_at timestamp, etag string, sha256 string, discovered_at timestamp, "
    "ingest_date date, run_id string, status string, duplicate_of string"
)
# Statuses (the data contract lists them all). A refusal is stored as "<code>: <message>";
# `status_code` gives the code.
# Written before the file's rows (the claim); replaced by the final status after them.
CLAIMED = "claimed"
INGESTED = "ingested"
DUPLICATE = "duplicate"
OUTSIDE = "outside_landing_zone"
# Decided from the listing, never opened:
FILE_TOO_LARGE = "file_too_large"  # over LandingZoneResource.max_file_bytes
# Written by the landing-zone sensor when a file's runs kept failing (retry cap reached):
FAILED = "failed"
# Found while hashing or reading: UNREADABLE, CHANGED_DURING_READ and the file's own defects
# (empty_file, not_utf8, nul_bytes, unknown_header, line_too_long, unterminated_quote,
# parse_error), defined beside the parser that finds them.
# Not parsed again when the partition is re-materialized (FAILED until it is re-queued).
NOT_READ = (DUPLICATE, OUTSIDE, INVALID_NAME, NOT_A_REGULAR_FILE, FILE_TOO_LARGE, FAILED)
# Refused from the listing alone: quarantine gets a row naming the file, with no evidence.
REFUSED_UNOPENED = (INVALID_NAME, NOT_A_REGULAR_FILE, FILE_TOO_LARGE)


def _absolute(path: str) -> bool:
    return "://" in path or path.startswith("/")


def to_ledger_path(uri: str, root: str) -> str:
    """A landed file's URI as the ledger stores it: relative to the landing root `root`
    (`LandingZoneResource.root_uri()`), or the URI itself when it is outside the zone."""
    root = root.rstrip("/")
    return uri[len(root) + 1 :] if uri.startswith(root + "/") and len(uri) > len(root) + 1 else uri


def from_ledger_path(path: str, root: str) -> str:
    """A ledger path as a URI under today's landing root (ledgers written before paths were
    relative hold absolute URIs: those are kept as they are)."""
    return path if _absolute(path) else f"{root.rstrip('/')}/{path}"


def status_code(status: Optional[str]) -> Optional[str]:
    """`unknown_header: 'id,name'` -> `unknown_header`."""
    return None if status is None else status.split(":", 1)[0].strip()


def refusal(code: str, message: str) -> str:
    """A status that names its cause: "<code>: <message>" (one line, bounded)."""
    text = " ".join(str(message).split())
    return f"{code}: {text[:500]}" if text else code


@dataclass(frozen=True)
class Claim:
    path: str
    size: int
    modified_at: Optional[dt.datetime]
    discovered_at: dt.datetime
    ingest_date: dt.date
    etag: Optional[str] = None
    sha256: Optional[str] = None
    status: Optional[str] = None
    duplicate_of: Optional[str] = None

    @property
    def readable(self) -> bool:
        """Parsed by bronze: not a duplicate copy, outside the zone, badly named, too large or failed."""
        return status_code(self.status) not in NOT_READ


def claim_of(file: LandedFile, now: dt.datetime, day: dt.date) -> Claim:
    return Claim(file.uri, file.size, file.modified, now, day, etag=file.etag, status=file.problem)


def outside_claim(uri: str, now: dt.datetime, day: dt.date) -> Claim:
    return Claim(uri, 0, None, now, day, status=OUTSIDE)


def _aware(value):
    # PySpark hands timestamps back naive, in the Python process's local time.
    if isinstance(value, dt.datetime) and value.tzinfo is None:
        return value.astimezone(dt.timezone.utc)
    return value


def claims_from_rows(rows: Iterable[dict]) -> dict[str, Claim]:
    """path -> claim, from ledger rows (any reader: Spark Rows as dicts, pyarrow)."""
    fields = Claim.__dataclass_fields__
    return {r["path"]: Claim(**{k: _aware(r.get(k)) for k in fields}) for r in rows}


def is_settled(file: LandedFile, now: dt.datetime, settle_seconds: float) -> bool:
    """Unchanged for `settle_seconds`: its producer has finished writing it."""
    return file.modified is not None and (now - file.modified).total_seconds() >= settle_seconds


def as_listed(claim: Claim, by_uri: dict[str, LandedFile]) -> Claim:
    """A claim no run has read yet (`claimed`, no hash: its run died, or `make requeue` gave it back)
    with the listing's size, ETag and time: its file may have been fixed in place since (what the
    check `no_failed_files` asks for), and the claim's would refuse it as `changed_during_read`."""
    file = by_uri.get(claim.path)
    if file is None or claim.sha256 is not None or status_code(claim.status) != CLAIMED:
        return claim
    return replace(claim, size=file.size, modified_at=file.modified, etag=file.etag)


def select_claims(
    day: dt.date,
    known: dict[str, Claim],
    landed: Sequence[LandedFile],
    now: dt.datetime,
    settle_seconds: float,
    requested: Optional[Sequence[str]] = None,
    today: Optional[dt.date] = None,
) -> tuple[list[Claim], list[str]]:
    """(claims of partition `day` for this run, messages about requested files skipped).

    - `requested` (a sensor batch): exactly those files; one claimed by another
      day is skipped (it was ingested then), one claimed by `day` is re-read.
    - otherwise: every file already claimed by `day`, plus, when `day` is today
      (the discovery day: `today`, by default `now`'s UTC date), every settled landed
      file no day has claimed yet.
    """
    by_uri = {f.uri: f for f in landed}
    skipped: list[str] = []
    if requested is not None:
        claims = []
        for uri in dict.fromkeys(requested):
            claim = known.get(uri)
            if claim is not None and claim.ingest_date != day:
                skipped.append(f"{uri}: already claimed by {claim.ingest_date}")
            elif claim is not None:
                claims.append(as_listed(claim, by_uri))
            elif uri in by_uri:
                claims.append(claim_of(by_uri[uri], now, day))
            else:
                skipped.append(f"{uri}: not in the landing zone (removed, or still being written)")
        return sorted(claims, key=lambda c: c.path), skipped
    mine = [as_listed(c, by_uri) for c in known.values() if c.ingest_date == day]
    if day == (today or now.date()):
        mine += [
            claim_of(f, now, day) for f in landed if f.uri not in known and is_settled(f, now, settle_seconds)
        ]
    return sorted(mine, key=lambda c: c.path), skipped


def waiting_files(
    day: dt.date, known: dict[str, Claim], landed: Sequence[LandedFile], now: dt.datetime, settle_seconds: float,
    today: Optional[dt.date] = None,
) -> list[LandedFile]:
    """New files a run of `day` leaves unclaimed because they are still settling (today only:
    `today`, by default `now`'s UTC date)."""
    if day != (today or now.date()):
        return []
    return [f for f in landed if f.uri not in known and not is_settled(f, now, settle_seconds)]


def refuse_too_large(claims: Sequence[Claim], max_file_bytes: int) -> list[Claim]:
    """Readable claims over the size cap become `file_too_large`: never opened, never hashed."""
    return [
        replace(c, status=refusal(FILE_TOO_LARGE, f"{c.size} bytes, over the limit of {max_file_bytes}"))
        if c.readable and c.size > max_file_bytes
        else c
        for c in claims
    ]


def mark_duplicates(claims: Sequence[Claim], known: dict[str, Claim]) -> list[Claim]:
    """Give every claim with a content hash its status against all earlier files:
    the earliest discovered file (then smallest path) with given bytes is the one
    ingested; later ones are `duplicate` of it. Other statuses are left as they are."""
    everyone = {c.path: c for c in known.values()}
    everyone.update({c.path: c for c in claims})
    first: dict[str, str] = {}
    for claim in sorted(everyone.values(), key=lambda c: (c.discovered_at, c.path)):
        if claim.sha256 and claim.status != OUTSIDE:
            first.setdefault(claim.sha256, claim.path)
    out = []
    for claim in claims:
        original = first.get(claim.sha256) if claim.sha256 and claim.status != OUTSIDE else None
        if original is not None and original != claim.path:
            out.append(replace(claim, status=DUPLICATE, duplicate_of=original))
        elif claim.status == DUPLICATE:
            out.append(replace(claim, status=None, duplicate_of=None))
        else:
            out.append(claim)
    return out


def owned_by(day: dt.date, paths: Sequence[str], known: dict[str, Claim]) -> tuple[list[Claim], list[str]]:
    """(the claims of `paths` that the ledger gives to `day`, the paths it gives to another day),
    read after a claim: what a run may read is what its day holds."""
    mine = [known[p] for p in dict.fromkeys(paths) if p in known and known[p].ingest_date == day]
    taken = [p for p in dict.fromkeys(paths) if p in known and known[p].ingest_date != day]
    return sorted(mine, key=lambda c: c.path), taken


@dataclass(frozen=True)
class BatchPlan:
    """What a bronze run of a day takes, decided from the ledger and the listing before it reads a byte."""

    selected: tuple[Claim, ...]  # the run's files, as the ledger and the listing give them
    to_claim: tuple[Claim, ...]  # new files and stranded `claimed` rows: the run's one conditional MERGE
    skipped: tuple[str, ...]  # why a requested file is not taken, one message each


def plan_batch(
    day: dt.date, known: dict[str, Claim], landed: Sequence[LandedFile], escaped: Sequence[str], now: dt.datetime,
    today: dt.date, settle_seconds: float, max_file_bytes: int, requested: Optional[Sequence[str]] = None,
) -> BatchPlan:
    """The files a run of `day` claims (`select_claims`, the same arguments), plus a record of each
    name that resolves outside the zone (`escaped`: recorded once, on its discovery day, never opened);
    new files over `max_file_bytes` are claimed already refused."""
    selected, skipped = select_claims(day, known, landed, now, settle_seconds, requested, today=today)
    if requested is not None or day == today:
        selected += [outside_claim(uri, now, day) for uri in escaped if uri not in known]
    new = refuse_too_large([c for c in selected if c.path not in known], max_file_bytes)
    stranded = [c for c in selected if c.path in known and c.status == CLAIMED]
    return BatchPlan(tuple(selected), tuple(new + stranded), tuple(skipped))


def owned_claims(day: dt.date, plan: BatchPlan, known: dict[str, Claim], max_file_bytes: int) -> tuple[list[Claim], list[str]]:
    """After the claim, with the ledger read again (`known`): (the planned files the ledger gives to
    `day`, size-capped; every skip message, a file a concurrent run claimed first included)."""
    mine, taken = owned_by(day, [c.path for c in plan.selected], known)
    skipped = [*plan.skipped, *(f"{path}: claimed by {known[path].ingest_date} by a concurrent run" for path in taken)]
    return refuse_too_large(mine, max_file_bytes), skipped


def same_file(claim: Claim, file: LandedFile) -> bool:
    """The listing shows the file the ledger recorded: its size, and its ETag and modification
    time where both sides know them."""
    if claim.size != file.size or (claim.etag and file.etag and claim.etag != file.etag):
        return False
    return not (claim.modified_at and file.modified) or _aware(claim.modified_at) == _aware(file.modified)


def changed_since_read(claims: Sequence[Claim], listed: dict[str, LandedFile]) -> list[Claim]:
    """Readable claims already hashed (an earlier run read them) whose name the listing shows with
    another size, ETag or modification time: overwritten in place, or landed again under the name
    the archive job moved them from. Whether their bytes changed is a hash away (a touched file
    keeps them): the run hashes these again rather than read what may not be what its day holds.
    `listed`: the listing by URI."""
    return [
        c for c in claims
        if c.readable and c.sha256 is not None and c.path in listed and not same_file(c, listed[c.path])
    ]


def to_record(claims: Sequence[Claim]) -> list[Claim]:
    """The claims whose final status a run writes: all but the `failed` ones. The sensor writes
    those and bronze never reads them; `make requeue` turns them back into claims, maybe while a
    run of their day is between its read of the ledger and its record, whose MERGE would write
    `failed` over the claim (or insert it back, in a ledger whose row is gone) and undo the requeue."""
    return [c for c in claims if status_code(c.status) != FAILED]


def missing_files(
    claims: Sequence[Claim], present: set[str], archived: dict[str, Optional[str]], exists: Callable[[str], bool]
) -> list[str]:
    """Readable claims whose file is neither in the listing (`present`) nor at its archived URI."""
    return sorted(
        c.path for c in claims
        if c.readable and c.path not in present and not (archived.get(c.path) and exists(archived[c.path]))
    )


def ledger_rows(claims: Sequence[Claim], run_id: str, refused: dict[str, str], default: str = INGESTED) -> list[tuple]:
    """Rows of the ledger for these claims; `refused` maps a path bronze refused (while
    hashing or parsing it) to its reason; a readable file not refused gets `default`
    (`ingested` once its rows are stored, `claimed` before)."""
    rows = []
    for c in claims:
        status = c.status if not c.readable else refused.get(c.path, default)
        rows.append(
            (c.path, c.size, c.modified_at, c.etag, c.sha256, c.discovered_at, c.ingest_date, run_id, status, c.duplicate_of)
        )
    return rows
