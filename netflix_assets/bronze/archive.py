"""Archiving landed files once they are ingested (Auto Loader's `cleanSource=MOVE`).

Without it the landing zone only grows, and every sensor tick lists every file ever
landed. With `LandingZoneResource.archive_after_days` set, the daily
`archive_landed_files` job moves each file the ledger has settled and that was
discovered at least that many days ago to `<archive>/<ingest_date>/<path in the
zone>` (`LandingZoneResource.archived_uri`; the archive is `<landing>/_archive`
unless `archive_uri` says otherwise). The listing never enters the archive, so a
tick costs the same however much has been archived; bronze reads an archived file
from there when its day is re-materialized.

Why a job of its own, and not the bronze step or the sensor: moving files is not
reading them (a failed move must not fail an ingestion), the sensor must stay a
cheap read-only tick, and a run is visible, logged and can be re-run. It starts no
Spark: the ledger is read with delta-rs (four columns; its paths, stored relative to
the landing zone, resolved under the zone's root), and files are moved with fsspec (a
rename on disk, a server-side copy then a delete on Azure). A move is idempotent, so a
re-run after a crash finishes the work.

What stays in place: rows `outside_landing_zone` (the file is not ours to move),
`claimed` (a run is reading it, or a stranded claim the sensor requests again),
`failed` (waits to be re-queued from the landing zone), `invalid_name` (the ledger
holds an escaped name, not the file's), any file whose name the listing flags, and, until
the run ends, the files of a day with a run queued or in progress (it reads them).
Everything else the ledger recorded (`ingested`, `duplicate`, a refusal for the
file's content) is archived when due. Only files the listing shows are looked at:
a file already archived, or removed by hand, is not. A due file whose listing moved
since its day read it (another size, ETag or modification time: overwritten in place)
is hashed first and stays, with a warning, unless it still holds the bytes the ledger
hashed: the archive is where a re-run of its day reads it, and that re-run then fails,
naming the file, instead of reading other bytes than its day's.

Off by default, twice: `archive_after_days` is None (the job then does nothing,
and the schedule skips), and the schedule `daily_archive_landed_files` is STOPPED.
"""

import datetime as dt
from dataclasses import dataclass, field
from typing import Iterable, Optional, Sequence

import dagster as dg

from ..lib import clock
from ..partitions import days_with_runs_in_progress
from ..resources.lake import LakeResource
from ..resources.landing import LandedFile, LandingZoneResource, archive_due
from . import ledger_store
from ..transforms.csv_records import stream_sha256
from .ledger import CLAIMED, FAILED, INVALID_NAME, LEDGER_TABLE, OUTSIDE, claims_from_rows, same_file, status_code

# Statuses whose files are never moved (see the module docstring).
KEPT_IN_PLACE = (OUTSIDE, CLAIMED, FAILED, INVALID_NAME)
LEDGER_COLUMNS = ["path", "status", "discovered_at", "ingest_date", "size", "modified_at", "etag", "sha256"]


@dataclass(frozen=True)
class Selection:
    """What the ledger and the listing say about archiving, as of one moment."""

    due: list[dict] = field(default_factory=list)  # ledger rows whose files are to be moved now (no hash: never read)
    not_due: int = 0  # files in the ledger and the zone, kept until `archive_after_days` have passed
    kept: int = 0  # files in the zone whose status keeps them there (KEPT_IN_PLACE, a flagged name)
    moved_since_read: list[dict] = field(default_factory=list)  # due, but listed unlike the ledger: hash first


def select_for_archive(
    rows: Iterable[dict], landed: Sequence[LandedFile], now: dt.datetime, archive_after_days: Optional[int]
) -> Selection:
    """The ledger rows to archive: their file is in the landing zone (as listed, name not
    flagged), their status lets it move, and it was discovered `archive_after_days` ago or
    more. None: archiving is off, nothing is due."""
    if archive_after_days is None:
        return Selection()
    listed = {f.uri: f for f in landed}
    due, not_due, kept, moved = [], 0, 0, []
    for row in rows:
        file = listed.get(row["path"])
        if file is None:
            continue
        if status_code(row["status"]) in KEPT_IN_PLACE or file.problem is not None:
            kept += 1
        elif not archive_due(row["discovered_at"], now, archive_after_days):
            not_due += 1
        elif row.get("sha256") and not same_file(claims_from_rows([row])[row["path"]], file):
            moved.append(row)
        else:
            due.append(row)
    by_path = lambda r: r["path"]  # noqa: E731
    return Selection(sorted(due, key=by_path), not_due, kept, sorted(moved, key=by_path))


def holds_bytes_read(landing: LandingZoneResource, row: dict) -> bool:
    """The file at the row's path still holds the bytes its ledger row hashed (read in chunks)."""
    if not row.get("sha256"):
        return False
    fs, _ = landing.filesystem()
    return stream_sha256(lambda: fs.open(fs._strip_protocol(row["path"]), "rb"))[0] == row["sha256"]


def read_ledger_rows(lake: LakeResource, landing: LandingZoneResource) -> list[dict]:
    """The ledger's rows (LEDGER_COLUMNS only) with delta-rs, `path` resolved to the file's URI
    in `landing`; [] while there is no ledger. All of them, not only the partitions old enough:
    the run reports what is not due yet."""
    return ledger_store.read_ledger(
        lake.table_uri("bronze", LEDGER_TABLE), landing.root_uri(), lake.storage_options(), columns=LEDGER_COLUMNS
    )


@dg.op(
    description=(
        "Moves landed titles files the ledger has settled, discovered at least `archive_after_days` ago, "
        "to `<archive>/<ingest_date>/<path>`. Does nothing while `archive_after_days` is unset."
    )
)
def move_settled_files_to_archive(
    context: dg.OpExecutionContext, landing: LandingZoneResource, lake: LakeResource
) -> dict:
    counts = {"moved": 0, "due": 0, "not_due": 0, "kept": 0, "waiting_for_runs": 0}
    if landing.archive_after_days is None:
        context.log.info("archiving is off: set the landing resource's archive_after_days to turn it on")
        context.add_output_metadata(dict(counts))
        return counts
    now = clock.now()  # real time: archive ages are durations since discovered_at
    landed, _ = landing.scan()
    selection = select_for_archive(read_ledger_rows(lake, landing), landed, now, landing.archive_after_days)
    holds = {}
    for row in selection.moved_since_read:
        try:
            holds[row["path"]] = holds_bytes_read(landing, row)
        except FileNotFoundError:  # removed since the listing: nothing to move
            pass
    touched = [row for row in selection.moved_since_read if holds.get(row["path"])]
    changed = sorted(path for path, same in holds.items() if not same)
    if changed:
        context.log.warning(
            f"{len(changed)} file(s) kept in place: they hold other bytes than their day read (overwritten in "
            "place since), so the archive would keep bytes a re-run of that day must not read. A name is "
            "ingested once: land a new version under a new name, and put the bytes that were read back under "
            f"this one to archive it: {', '.join(changed[:5])}{' ...' if len(changed) > 5 else ''}"
        )
    due = sorted(selection.due + touched, key=lambda r: r["path"])
    # A re-run of a day reads its files where the ledger says; moved while it reads them (a blob
    # opened, then its ranges fetched), a file is recorded `unreadable` and its rows leave the day.
    busy = days_with_runs_in_progress(context.instance)
    waiting = [row for row in due if str(row["ingest_date"]) in busy]
    if waiting:
        context.log.info(f"{len(waiting)} due file(s) wait for the run(s) in progress of their day(s) "
                         f"({', '.join(sorted({str(r['ingest_date']) for r in waiting}))}): archived by a later run")
        due = [row for row in due if str(row["ingest_date"]) not in busy]
    moved = landing.archive(due, now)
    counts = {"moved": len(moved), "due": len(due), "not_due": selection.not_due,
              "kept": selection.kept + len(changed), "waiting_for_runs": len(waiting)}
    context.log.info(
        f"archived {len(moved)} of {len(due)} due file(s) (older than {landing.archive_after_days} "
        f"day(s)); {selection.not_due} not due yet, {counts['kept']} kept in place (by their status, or changed)"
        + (f"; e.g. {moved[0][0]} -> {moved[0][1]}" if moved else "")
    )
    if len(moved) < len(due):
        context.log.warning(f"{len(due) - len(moved)} due file(s) not moved: see the warnings above")
    context.add_output_metadata({**counts, "archive": landing.archive_root_uri()})
    return counts


@dg.job(
    description=(
        "Archive landed titles files once ingested (Auto Loader's cleanSource=MOVE): no Spark, "
        "the ledger read with delta-rs, files moved with fsspec. Off while archive_after_days is unset."
    ),
)
def archive_landed_files():
    move_settled_files_to_archive()


@dg.schedule(
    job=archive_landed_files,
    cron_schedule="30 3 * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.STOPPED,
    description=(
        "Daily at 03:30 UTC, when turned on and `archive_after_days` is set: move landed titles files "
        "ingested at least that many days ago to the archive."
    ),
)
def daily_archive_landed_files(context: dg.ScheduleEvaluationContext, landing: LandingZoneResource):
    if landing.archive_after_days is None:
        return dg.SkipReason("archiving is off: the landing resource's archive_after_days is not set")
    day = context.scheduled_execution_time.astimezone(dt.timezone.utc).date().isoformat()
    return dg.RunRequest(run_key=f"archive-{day}")


defs = dg.Definitions(jobs=[archive_landed_files], schedules=[daily_archive_landed_files])
