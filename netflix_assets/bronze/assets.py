"""Bronze assets: the landing zone (titles) and the HTTP pulls (lookups)."""


import datetime as dt
import json
from dataclasses import replace
from typing import Any, Optional

import dagster as dg
from pydantic import Field
from pyspark.sql import DataFrame

from ..io_managers.delta import REPLACE_WHERE, delta_out
from ..lib import clock
from ..lib.checks import table_checks
from ..lib.lineage import LINEAGE_KEY, same_columns
from ..lib.tables import partition_date, sql_in
from ..partitions import daily_partitions
from ..resources.http_source import HttpSourceResource
from ..resources.lake import LakeResource
from ..resources.landing import LandingZoneResource, OutsideLandingZone
from ..resources.spark import SparkResource
from ..transforms.bronze import file_digests, parse_files, refused_files, split_parsed, with_ingest_date
from ..transforms.csv_records import ParseLimits, open_text, scan_file
from ..transforms.formats import CAST, CATEGORY, COUNTRIES, DIRECTORS, TITLE_FORMATS, SourceFormat, union_columns
from ..resources.databricks import SPARK_STEP
from . import claims
from . import ledger as ledger_lib
from . import pulls
from .checks import bronze_checks

LOOKUP_FORMATS: dict[str, SourceFormat] = {
    "netflix_cast": CAST,
    "netflix_category": CATEGORY,
    "netflix_countries": COUNTRIES,
    "netflix_directors": DIRECTORS,
}
TITLE_COLUMNS = union_columns(TITLE_FORMATS)

# The landing zone itself: files arrive from outside Dagster (the Auto Loader source).
landing_zone = dg.AssetSpec(
    ["raw", "netflix_titles"],
    description="Titles files dropped into the landing zone `<lake>/raw/netflix_titles/` (any *.csv, nested).",
    group_name="raw",
    kinds={"csv"},
)


# ------------------------------------------------------------------ HTTP pulls


@dg.multi_asset(
    name="pull_lookup_files",
    outs={
        dataset: dg.AssetOut(
            key=["raw", dataset],
            io_manager_key="json_io_manager",
            description=f"Byte-for-byte copy of today's HTTP pull of {dataset} (the ADF ForEach copy).",
            kinds={"http"},
            is_required=False,
        )
        for dataset in LOOKUP_FORMATS
    },
    partitions_def=daily_partitions,
    can_subset=True,
    group_name="raw",
)
def pull_lookup_files(context: dg.AssetExecutionContext, http_source: HttpSourceResource, lake: LakeResource):
    """Pull each configured (folder_name, file_name) and keep its bytes under
    `<lake>/raw/api/<dataset>/<date>/` before anything parses them.

    Unchanged content is not downloaded again: the last pull's ETag goes out as
    `If-None-Match`, and without ETags the content hash decides. Every pull is
    still recorded (`_pull.json` beside the copy, and the materialization)."""
    day = context.partition_key
    for key in sorted(context.selected_asset_keys):
        dataset = key.path[-1]
        item = http_source.source_file(dataset)
        record = pulls.pull(
            http_source, item, lake.api_dataset_uri(dataset), day, log=context.log, storage_options=lake.storage_options()
        )
        yield dg.Output(
            record,
            output_name=dataset,
            metadata={
                "url": record["url"],
                "uri": dg.MetadataValue.path(record["uri"]),
                "sha256": record["sha256"],
                "bytes": record["bytes"],
                "http_status": record["http_status"],
                "etag": record["etag"] or "",
                "attempts": record["attempts"],
                "unchanged_since_last_pull": record["unchanged"],
            },
        )


# What to do about a lookup file bronze refuses: the pull keeps its bytes, so the fix is upstream.
LOOKUP_REMEDY = (
    "Nothing of it was loaded. Fix the file where the HTTP source serves it (or point the http_source "
    "resource at a good copy), then materialize this partition's raw pull and this bronze table again."
)


def refused_lookup(uri: str, reason: str) -> dg.Failure:
    return dg.Failure(f"{uri}: refused ({reason}). {LOOKUP_REMEDY}", metadata={"uri": uri, "reason": reason})


def files_gone(day: dt.date | str, missing: list[str], landing_uri: str) -> dg.Failure:
    return dg.Failure(
        f"partition {day}: {len(missing)} file(s) of its ledger are gone from the landing zone {landing_uri} "
        f"and its archive, so the partition cannot be rebuilt as it was: {', '.join(missing[:5])}"
        f"{' ...' if len(missing) > 5 else ''}. Put them back under the same names and run the partition "
        "again (its tables keep their last good Delta version meanwhile).",
        metadata={"missing": missing[:100], "landing_zone": landing_uri},
    )


def _check_lookup_file(uri: str, fmt: SourceFormat, storage_options: dict[str, Any]) -> None:
    """A lookup file that cannot be parsed stops the pipeline with a clear error."""
    import fsspec

    from ..transforms.formats import detect_format

    def opener():
        return fsspec.open(uri, "rb", **storage_options).open()

    defect = scan_file(opener)
    if defect is not None:
        raise refused_lookup(uri, defect)
    with opener() as stream:
        header = open_text(stream).readline()
    if detect_format(header, [fmt]) is None:
        raise refused_lookup(uri, f"unknown header {header.strip()[:200]!r}; expected {','.join(fmt.columns)}")


def _bronze_lookup(dataset: str, fmt: SourceFormat) -> dg.AssetsDefinition:
    @dg.asset(
        key=["bronze", dataset],
        ins={"pulled": dg.AssetIn(key=["raw", dataset])},
        partitions_def=daily_partitions,
        io_manager_key="delta_io_manager",
        group_name="bronze",
        kinds={"spark", "delta", "bronze"},
        description=f"Rows of the {dataset} pull, strings as read, plus lineage columns.",
        metadata={LINEAGE_KEY: same_columns(["raw", dataset], fmt.columns)},
        required_resource_keys={"spark", "lake", *SPARK_STEP},
    )
    def _asset(context: dg.AssetExecutionContext, pulled: dict[str, Any]):
        spark: SparkResource = context.resources.spark
        options = context.resources.lake.storage_options()
        _check_lookup_file(pulled["uri"], fmt, options)
        fetched_at = dt.datetime.fromisoformat(pulled["fetched_at"])
        parsed = parse_files(spark.get_session(), [(pulled["uri"], fetched_at)], [fmt], options).persist()
        try:
            # A defect found part-way (a line over the limit, an unterminated quote) refuses the pull.
            for uri, reason in refused_files(parsed).items():
                raise refused_lookup(uri, reason)
            bronze, _ = split_parsed(with_ingest_date(parsed, partition_date(context)), fmt.columns)
            yield dg.Output(bronze)
        finally:
            parsed.unpersist()

    return _asset


bronze_lookups = [_bronze_lookup(dataset, fmt) for dataset, fmt in LOOKUP_FORMATS.items()]


# ------------------------------------------------------------------ landing zone


class BronzeTitlesConfig(dg.Config):
    files: Optional[list[str]] = Field(
        default=None,
        description=(
            "A sensor batch: exactly these landed file URIs, added to the partition's rows. "
            "Default: re-read every file of the partition, plus, for today's partition, "
            "every settled file not claimed yet."
        ),
    )
    settle_seconds: Optional[float] = Field(
        default=None,
        description=(
            "Claim new files not modified for this many seconds (default: the landing zone's "
            "settle_seconds, 30 s). 0 claims every file now, even one still being written."
        ),
    )


@dg.multi_asset(
    name="bronze_netflix_titles",
    outs={
        "titles": delta_out(
            ["bronze", "netflix_titles"],
            "Every record of every titles file that landed on the day, strings as read, plus lineage.",
            same_columns(landing_zone.key.path, TITLE_COLUMNS),
        ),
        "refused_files": delta_out(
            ["quarantine", "bronze_netflix_titles"],
            "Every line of the titles files bronze refused as a whole (unknown header, not UTF-8, empty), with `_reason`.",
        ),
    },
    deps=[landing_zone.key],
    partitions_def=daily_partitions,
    group_name="bronze",
    # Both tables or neither: the ledger records a file `ingested` once its rows are stored,
    # and its rows are in one of the two. A selection of one is refused by Dagster, naming the other.
    can_subset=False,
    required_resource_keys={"spark", "lake", "landing", *SPARK_STEP},
)
def bronze_netflix_titles(context: dg.AssetExecutionContext, config: BronzeTitlesConfig):
    """Reads the partition's landed files like Auto Loader: each file exactly once,
    recorded in the ledger `bronze/_ingested_files` with its hash and status."""
    spark: SparkResource = context.resources.spark
    lake: LakeResource = context.resources.lake
    landing: LandingZoneResource = context.resources.landing
    day = partition_date(context)
    session = spark.get_session()
    ledger_uri = lake.table_uri("bronze", ledger_lib.LEDGER_TABLE)
    root = landing.root_uri()
    known = claims.read_claims(session, ledger_uri, root, lake.storage_options())
    now, today = clock.now(), clock.today()  # real time for file ages; today: the discovery day
    settle = landing.settle_seconds if config.settle_seconds is None else config.settle_seconds
    landed, escaped = landing.scan()

    requested = None
    if config.files is not None:
        requested, outside = [], []
        for uri in config.files:
            try:
                requested.append(landing.require_inside(uri))
            except OutsideLandingZone:
                outside.append(uri)
        escaped = sorted(set(escaped) | set(outside))
    selected, skipped = ledger_lib.select_claims(day, known, landed, now, settle, requested, today=today)
    # Names that resolve outside the zone are recorded once (on their discovery day), never opened.
    if requested is not None or day == today:
        selected += [ledger_lib.outside_claim(uri, now, day) for uri in escaped if uri not in known]
    # New files are claimed before any row of them is written, by one conditional commit, and
    # the ledger is read again: a concurrent run (of this day or another) may have been first.
    new = ledger_lib.refuse_too_large([c for c in selected if c.path not in known], landing.max_file_bytes)
    stranded = [c for c in selected if c.path in known and c.status == ledger_lib.CLAIMED]
    claims.claim(
        session, ledger_uri, root, ledger_lib.ledger_rows(new + stranded, context.run.run_id, {}, ledger_lib.CLAIMED),
        lake.storage_options(),
    )
    if new:
        known = claims.read_claims(session, ledger_uri, root, lake.storage_options())
    mine, taken = ledger_lib.owned_by(day, [c.path for c in selected], known)
    skipped += [f"{path}: claimed by {known[path].ingest_date} by a concurrent run" for path in taken]
    for message in skipped:
        context.log.warning(message)
    waiting = [] if requested is not None else ledger_lib.waiting_files(day, known, landed, now, settle, today=today)
    if waiting:
        context.log.warning(
            f"partition {day}: {len(waiting)} new file(s) left for a later run, still settling (modified "
            f"less than {settle:g} s ago; the sensor requests them once settled, or run with config "
            f"settle_seconds: 0): {json.dumps([f.uri for f in waiting])[:2000]}"
        )
    claimed = ledger_lib.refuse_too_large(mine, landing.max_file_bytes)

    # The listing already says what is there: no request per file. A file archived since its
    # day was ingested (even while this run reads it) is read from the archive.
    present = {f.uri for f in landed}
    fallback = {c.path: _archived(landing, c) for c in claimed if c.readable}
    missing = sorted(
        c.path for c in claimed if c.readable and c.path not in present and not (fallback[c.path] and landing.exists(fallback[c.path]))
    )
    if missing:
        raise files_gone(day, missing, landing.uri)
    unhashed = [(c.path, c.size, fallback[c.path]) for c in claimed if c.readable and c.sha256 is None]
    digests, unreadable = file_digests(session, unhashed, landing.storage_options())
    claimed = ledger_lib.mark_duplicates([replace(c, sha256=digests.get(c.path, c.sha256)) for c in claimed], known)
    readable = [c for c in claimed if c.readable and c.path not in unreadable]
    context.log.info(
        f"partition {day}: {len(readable)} file(s) to read, {len(claimed) - len(readable)} not read "
        f"(duplicates, outside the zone, refused): {json.dumps([c.path for c in readable])[:2000]}"
    )

    limits = ParseLimits(landing.max_record_bytes, landing.evidence_bytes)
    parsed = parse_files(
        session,
        [(c.path, c.discovered_at, c.size, fallback[c.path]) for c in readable],
        TITLE_FORMATS,
        landing.storage_options(),
        limits,
    )
    # Parsing runs in Python workers: do it once for every output.
    parsed = with_ingest_date(parsed, day).persist()
    try:
        reasons = {**unreadable, **refused_files(parsed)}
        titles, refused = split_parsed(parsed, TITLE_COLUMNS, sorted(reasons))
        # Files refused before parsing (unreadable, never opened) still leave a quarantine row.
        unopened = [
            (c.path, reasons.get(c.path, c.status), c.discovered_at)
            for c in claimed
            if c.path in unreadable or ledger_lib.status_code(c.status) in ledger_lib.REFUSED_UNOPENED
        ]
        if unopened:
            refused = refused.unionByName(refusal_rows(session, unopened, day))
        # A batch adds (or replaces) only its own files' rows in the partition.
        narrower = {} if requested is None else {REPLACE_WHERE: sql_in("_source_file", [c.path for c in claimed])}
        yield dg.Output(
            titles,
            "titles",
            metadata={
                **narrower,
                "files_read": len([c for c in readable if c.path not in reasons]),
                "files_not_read": len(claimed) - len(readable),
                "files_refused": len(reasons.keys() | {path for path, _, _ in unopened}),
                "files_waiting": dg.MetadataValue.json([f.uri for f in waiting[:100]]),
                "ledger": dg.MetadataValue.path(ledger_uri),
            },
        )
        yield dg.Output(refused, "refused_files", metadata=narrower)
        # Recorded after bronze is written: a run stopped before leaves `claimed` rows, which
        # the day's next run reads again (the sensor requests them again).
        claims.record(
            session, ledger_uri, root, ledger_lib.ledger_rows(claimed, context.run.run_id, reasons), lake.storage_options()
        )
    finally:
        parsed.unpersist()


def _archived(landing: LandingZoneResource, claim: ledger_lib.Claim) -> Optional[str]:
    """Where the archive job puts the claim's file (None for a path outside today's landing zone)."""
    try:
        return landing.archived_uri(claim.path, claim.ingest_date)
    except OutsideLandingZone:
        return None


def refusal_rows(session, refusals: list[tuple[str, str, dt.datetime]], day: dt.date) -> DataFrame:
    """One quarantine row (no evidence) per (file, reason, discovered_at) refused without its bytes being read."""
    return session.createDataFrame(
        [(path, None, None, reason, discovered_at, day) for path, reason, discovered_at in sorted(refusals)],
        "_source_file string, _source_line int, _rescued_data string, _reason string, "
        "_ingested_at timestamp, ingest_date date",
    )


checks = bronze_checks(("bronze", "netflix_titles"), TITLE_FORMATS, TITLE_COLUMNS)
for _dataset, _fmt in LOOKUP_FORMATS.items():
    checks += bronze_checks(("bronze", _dataset), [_fmt], _fmt.columns)

defs = dg.Definitions(
    assets=[landing_zone, pull_lookup_files, *bronze_lookups, bronze_netflix_titles], asset_checks=table_checks(checks)
)
