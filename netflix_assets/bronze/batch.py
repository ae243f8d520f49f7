"""One bronze run of the titles files, step by step: claim the day's files in the ledger, find them,
hash them, parse them, split the rows from the refusals, record the outcome.

The asset `bronze_netflix_titles` only wires these together. The decisions (which files, which
are duplicates, which are gone) are the pure rules of `ledger.py`; the ledger's MERGEs are in
`claims.py`; parsing is `transforms/bronze.py`. What is here is their order, which is the
exactly-once protocol (ledger.py's docstring): the claim is committed before any row is
written, the ledger is read again after it (a concurrent run may have been first), and the
final statuses are recorded after both bronze tables are stored, so a run stopped anywhere
leaves `claimed` rows that the day's next run reads again.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from typing import TYPE_CHECKING, Any, Optional, Sequence

import dagster as dg

from ..io_managers.delta import Replace
from ..lib import clock
from ..lib.delta import sql_in
from ..resources.landing import LandedFile, LandingZoneResource, OutsideLandingZone
from ..transforms.bronze import file_digests, parse_files, refused_files, split_parsed, with_ingest_date
from ..transforms.csv_records import ParseLimits
from ..transforms.formats import TITLE_COLUMNS, TITLE_FORMATS
from . import claims
from . import ledger as ledger_lib

if TYPE_CHECKING:
    import logging

    from pyspark.sql import DataFrame, SparkSession

    from ..resources.lake import LakeResource


@dataclasses.dataclass(frozen=True)
class Batch:
    """A run's files once claimed: every claim of the day it read or refused (`claimed`), the ones it
    parses (`readable`), the ones refused while hashing (`unreadable`: path -> reason), where each
    file is read from if it has been archived since (`archived`), the new files left waiting, and
    the files read from their archived copy alone (their name holds other bytes since)."""

    day: dt.date
    requested: bool
    claimed: list[ledger_lib.Claim]
    readable: list[ledger_lib.Claim]
    unreadable: dict[str, str]
    archived: dict[str, Optional[str]]
    waiting: tuple
    from_archive: frozenset[str] = frozenset()  # read from the archived copy alone: the name holds other bytes


@dataclasses.dataclass(frozen=True)
class Outputs:
    """bronze's two tables (each a `Replace` of its batch's files' rows for a sensor batch, which
    adds to the partition), why each file refused as a whole was, and the titles' metadata."""

    titles: "DataFrame | Replace"
    refused: "DataFrame | Replace"
    reasons: dict[str, str]
    metadata: dict[str, Any]


def files_gone(day: dt.date | str, missing: list[str], landing_uri: str) -> dg.Failure:
    return dg.Failure(
        f"partition {day}: {len(missing)} file(s) of its ledger are gone from the landing zone {landing_uri} "
        f"and its archive, so the partition cannot be rebuilt as it was: {', '.join(missing[:5])}"
        f"{' ...' if len(missing) > 5 else ''}. Put them back under the same names and run the partition "
        "again (its tables keep their last good Delta version meanwhile).",
        metadata={"missing": missing[:100], "landing_zone": landing_uri},
    )


def files_changed(day: dt.date | str, changed: list[str], landing_uri: str) -> dg.Failure:
    return dg.Failure(
        f"partition {day}: {len(changed)} file(s) of its ledger hold other bytes in the landing zone {landing_uri} "
        f"than the ones it read (their sha256 differs from the ledger's) and the archive has no copy of those, "
        f"so the partition cannot be rebuilt as it was: {', '.join(changed[:5])}{' ...' if len(changed) > 5 else ''}. "
        "A name is ingested once: land a new version under a new name (it is read as a new file), put the bytes "
        "that were read back under this one, and run the partition again (its tables keep their last good Delta "
        "version meanwhile).",
        metadata={"changed": changed[:100], "landing_zone": landing_uri},
    )


def _from_archive(
    session: "SparkSession", landing: LandingZoneResource, changed: Sequence[ledger_lib.Claim],
    listed: dict[str, LandedFile], archived: dict[str, Optional[str]], day: dt.date,
) -> frozenset[str]:
    """Of the files read before whose listing moved since (`ledger.changed_since_read`): the ones
    whose bytes did change, to be read from their archived copy. Both copies are hashed and
    compared with the ledger's hash; with neither holding the bytes read, the run fails."""
    if not changed:
        return frozenset()
    copies = [(c.path, listed[c.path].size) for c in changed] + [(archived[c.path], c.size) for c in changed if archived[c.path]]
    digests, _ = file_digests(session, copies, landing.storage_options())
    replaced = [c for c in changed if digests.get(c.path) != c.sha256]
    lost = sorted(c.path for c in replaced if not archived[c.path] or digests.get(archived[c.path]) != c.sha256)
    if lost:
        raise files_changed(day, lost, landing.uri)
    return frozenset(c.path for c in replaced)


def _inside(landing: LandingZoneResource, uris: Sequence[str]) -> tuple[list[str], list[str]]:
    """(the requested URIs, normalized inside the zone; those that resolve outside it)."""
    inside, outside = [], []
    for uri in uris:
        try:
            inside.append(landing.require_inside(uri))
        except OutsideLandingZone:
            outside.append(uri)
    return inside, outside


def _archived(landing: LandingZoneResource, claim: ledger_lib.Claim) -> Optional[str]:
    """Where the archive job puts the claim's file (None for a path outside today's landing zone)."""
    try:
        return landing.archived_uri(claim.path, claim.ingest_date)
    except OutsideLandingZone:
        return None


def claim_batch(
    session: "SparkSession", lake: "LakeResource", landing: LandingZoneResource, day: dt.date, run_id: str,
    files: Optional[Sequence[str]], settle_seconds: Optional[float], log: "logging.Logger",
) -> Batch:
    """Claim the day's files (exactly `files`, a sensor batch, when given), then find and hash them."""
    ledger_uri, root, options = lake.table_uri("bronze", ledger_lib.LEDGER_TABLE), landing.root_uri(), lake.storage_options()
    known = claims.read_claims(session, ledger_uri, root, options)
    now, today = clock.now(), clock.today()  # real time for file ages; today: the discovery day
    settle = landing.settle_seconds if settle_seconds is None else settle_seconds
    landed, escaped = landing.scan()
    requested = None
    if files is not None:
        requested, outside = _inside(landing, files)
        escaped = sorted(set(escaped) | set(outside))
    plan = ledger_lib.plan_batch(day, known, landed, escaped, now, today, settle, landing.max_file_bytes, requested)
    claims.claim(session, ledger_uri, root, ledger_lib.ledger_rows(plan.to_claim, run_id, {}, ledger_lib.CLAIMED), options)
    if any(c.path not in known for c in plan.to_claim):
        known = claims.read_claims(session, ledger_uri, root, options)
    claimed, skipped = ledger_lib.owned_claims(day, plan, known, landing.max_file_bytes)
    for message in skipped:
        log.warning(message)
    # A sensor batch names its files: none is left waiting.
    waiting = [] if requested is not None else ledger_lib.waiting_files(day, known, landed, now, settle, today=today)
    if waiting:
        log.warning(
            f"partition {day}: {len(waiting)} new file(s) left for a later run, still settling (modified "
            f"less than {settle:g} s ago; the sensor requests them once settled, or run with config "
            f"settle_seconds: 0): {json.dumps([f.uri for f in waiting])[:2000]}"
        )
    # The listing already says what is there: no request per file. A file archived since its
    # day was ingested (even while this run reads it) is read from the archive.
    archived = {c.path: _archived(landing, c) for c in claimed if c.readable}
    missing = ledger_lib.missing_files(claimed, {f.uri for f in landed}, archived, landing.exists)
    if missing:
        raise files_gone(day, missing, landing.uri)
    listed = {f.uri: f for f in landed}
    from_archive = _from_archive(session, landing, ledger_lib.changed_since_read(claimed, listed), listed, archived, day)
    unhashed = [(c.path, c.size, archived[c.path]) for c in claimed if c.readable and c.sha256 is None]
    digests, unreadable = file_digests(session, unhashed, landing.storage_options())
    claimed = ledger_lib.mark_duplicates(
        [dataclasses.replace(c, sha256=digests.get(c.path, c.sha256)) for c in claimed], known
    )
    readable = [c for c in claimed if c.readable and c.path not in unreadable]
    log.info(
        f"partition {day}: {len(readable)} file(s) to read, {len(claimed) - len(readable)} not read "
        f"(duplicates, outside the zone, refused): {json.dumps([c.path for c in readable])[:2000]}"
    )
    return Batch(day, requested is not None, claimed, readable, unreadable, archived, tuple(waiting), from_archive)


def parse_batch(session: "SparkSession", landing: LandingZoneResource, batch: Batch) -> "DataFrame":
    """Every line of the batch's readable files, parsed (in Spark's Python workers: persist it)."""
    limits = ParseLimits(landing.max_record_bytes, landing.evidence_bytes)
    files = [(c.path, c.discovered_at, c.size, batch.archived[c.path], c.path in batch.from_archive) for c in batch.readable]
    return with_ingest_date(parse_files(session, files, TITLE_FORMATS, landing.storage_options(), limits), batch.day)


def split_batch(session: "SparkSession", parsed: "DataFrame", batch: Batch, ledger_uri: str) -> Outputs:
    """bronze rows and the quarantine of whole files refused (those refused before parsing too)."""
    reasons = {**batch.unreadable, **refused_files(parsed)}
    titles, refused = split_parsed(parsed, TITLE_COLUMNS, sorted(reasons))
    unopened = [
        (c.path, reasons.get(c.path, c.status), c.discovered_at)
        for c in batch.claimed
        if c.path in batch.unreadable or ledger_lib.status_code(c.status) in ledger_lib.REFUSED_UNOPENED
    ]
    if unopened:
        refused = refused.unionByName(refusal_rows(session, unopened, batch.day))
    metadata = {
        "files_read": len([c for c in batch.readable if c.path not in reasons]),
        "files_not_read": len(batch.claimed) - len(batch.readable),
        "files_refused": len(reasons.keys() | {path for path, _, _ in unopened}),
        "files_waiting": dg.MetadataValue.json([f.uri for f in batch.waiting[:100]]),
        "ledger": dg.MetadataValue.path(ledger_uri),
    }
    if batch.requested:  # the predicate is short (the batch's file list): shown with the materialization
        narrower = sql_in("_source_file", [c.path for c in batch.claimed])
        titles, refused = Replace(titles, narrower, shown=True), Replace(refused, narrower, shown=True)
    return Outputs(titles, refused, reasons, metadata)


def refusal_rows(session: "SparkSession", refusals: list[tuple[str, str, dt.datetime]], day: dt.date) -> "DataFrame":
    """One quarantine row (no evidence) per (file, reason, discovered_at) refused without its bytes being read."""
    return session.createDataFrame(
        [(path, None, None, reason, discovered_at, day) for path, reason, discovered_at in sorted(refusals)],
        "_source_file string, _source_line int, _rescued_data string, _reason string, "
        "_ingested_at timestamp, ingest_date date",
    )


def record_batch(
    session: "SparkSession", lake: "LakeResource", landing: LandingZoneResource, batch: Batch, run_id: str,
    reasons: dict[str, str],
) -> None:
    """Each file's final status, once both bronze tables are stored."""
    ledger_uri = lake.table_uri("bronze", ledger_lib.LEDGER_TABLE)
    rows = ledger_lib.ledger_rows(ledger_lib.to_record(batch.claimed), run_id, reasons)
    claims.record(session, ledger_uri, landing.root_uri(), rows, lake.storage_options())
