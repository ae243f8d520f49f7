"""Bronze assets: the landing zone (titles) and the HTTP pulls (lookups)."""


import datetime as dt
import json
from dataclasses import replace
from typing import Any, Optional

import dagster as dg
from pydantic import Field
from pyspark.sql import DataFrame

from ..io_managers.delta import REPLACE_WHERE, delta_out
from ..lib.checks import table_checks
from ..lib.lineage import LINEAGE_KEY, same_columns
from ..lib.tables import partition_date, read_table, sql_in, write_partitions
from ..partitions import daily_partitions
from ..resources.http_source import HttpSourceResource
from ..resources.lake import LakeResource
from ..resources.landing import LandingZoneResource, OutsideLandingZone
from ..resources.spark import SparkResource
from ..transforms.bronze import file_digests, parse_files, split_parsed, with_ingest_date
from ..transforms.csv_records import open_text, scan_file
from ..transforms.formats import CAST, CATEGORY, COUNTRIES, DIRECTORS, TITLE_FORMATS, SourceFormat, union_columns
from ..resources.databricks import SPARK_STEP
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
    group_name="bronze",
    kinds={"csv"},
)


# ------------------------------------------------------------------ HTTP pulls


@dg.multi_asset(
    name="pull_lookup_files",
    outs={
        dataset: dg.AssetOut(
            key=["raw", dataset],
            io_manager_key="pickle_io_manager",
            description=f"Byte-for-byte copy of today's HTTP pull of {dataset} (the ADF ForEach copy).",
            kinds={"http"},
            is_required=False,
        )
        for dataset in LOOKUP_FORMATS
    },
    partitions_def=daily_partitions,
    can_subset=True,
    group_name="bronze",
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


def _check_lookup_file(uri: str, fmt: SourceFormat, storage_options: dict[str, Any]) -> None:
    """A lookup file that cannot be parsed stops the pipeline with a clear error."""
    import fsspec

    from ..transforms.formats import detect_format

    def opener():
        return fsspec.open(uri, "rb", **storage_options).open()

    defect = scan_file(opener)
    if defect is not None:
        raise dg.Failure(f"{uri}: refused ({defect})", metadata={"uri": uri, "reason": defect})
    with opener() as stream:
        header = open_text(stream).readline()
    if detect_format(header, [fmt]) is None:
        raise dg.Failure(
            f"{uri}: unknown header {header.strip()[:200]!r}; expected {','.join(fmt.columns)}",
            metadata={"uri": uri, "reason": "unknown_header"},
        )


def _bronze_lookup(dataset: str, fmt: SourceFormat) -> dg.AssetsDefinition:
    @dg.asset(
        key=["bronze", dataset],
        ins={"pulled": dg.AssetIn(key=["raw", dataset])},
        partitions_def=daily_partitions,
        io_manager_key="delta_io_manager",
        group_name="bronze",
        kinds={"spark", "delta"},
        description=f"Rows of the {dataset} pull, strings as read, plus lineage columns.",
        metadata={LINEAGE_KEY: same_columns(["raw", dataset], fmt.columns)},
        required_resource_keys={"spark", "lake", *SPARK_STEP},
    )
    def _asset(context: dg.AssetExecutionContext, pulled: dict[str, Any]) -> DataFrame:
        spark: SparkResource = context.resources.spark
        options = context.resources.lake.storage_options()
        _check_lookup_file(pulled["uri"], fmt, options)
        fetched_at = dt.datetime.fromisoformat(pulled["fetched_at"])
        parsed = parse_files(spark.get_session(), [(pulled["uri"], fetched_at)], [fmt], options)
        bronze, _ = split_parsed(with_ingest_date(parsed, partition_date(context)), fmt.columns)
        return bronze

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
    can_subset=True,
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
    ledger = read_table(session, ledger_uri)
    known = ledger_lib.claims_from_rows(r.asDict() for r in ledger.collect()) if ledger is not None else {}
    now = dt.datetime.now(dt.timezone.utc)
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
    claims, skipped = ledger_lib.select_claims(day, known, landed, now, landing.settle_seconds, requested)
    for message in skipped:
        context.log.warning(message)
    # Names that resolve outside the zone are recorded once (on their discovery day), never opened.
    if requested is not None or day == now.date():
        claims += [ledger_lib.outside_claim(uri, now, day) for uri in escaped if uri not in known]

    # The listing already says what is there: no request per file.
    present = {f.uri for f in landed}
    missing = [c.path for c in claims if c.readable and c.path not in present]
    if missing:
        raise dg.Failure(
            f"partition {day}: {len(missing)} file(s) of its ledger are gone from the landing zone",
            metadata={"missing": missing[:100]},
        )
    unhashed = [c.path for c in claims if c.readable and c.sha256 is None]
    digests = file_digests(session, unhashed, landing.storage_options())
    claims = ledger_lib.mark_duplicates([replace(c, sha256=digests.get(c.path, c.sha256)) for c in claims], known)
    readable = [c for c in claims if c.readable]
    context.log.info(
        f"partition {day}: {len(readable)} file(s) to read, {len(claims) - len(readable)} not read "
        f"(duplicates, outside the zone): {json.dumps([c.path for c in readable])[:2000]}"
    )

    parsed = parse_files(
        session, [(c.path, c.discovered_at) for c in readable], TITLE_FORMATS, landing.storage_options()
    )
    # Parsing runs in Python workers: do it once for every output.
    parsed = with_ingest_date(parsed, day).persist()
    try:
        titles, refused = split_parsed(parsed, TITLE_COLUMNS)
        # A batch adds (or replaces) only its own files' rows in the partition.
        narrower = {} if requested is None else {REPLACE_WHERE: sql_in("_source_file", [c.path for c in claims])}
        selected = context.op_execution_context.selected_output_names
        if "titles" in selected:
            yield dg.Output(
                titles,
                "titles",
                metadata={
                    **narrower,
                    "files_read": len(readable),
                    "files_not_read": len(claims) - len(readable),
                    "ledger": dg.MetadataValue.path(ledger_uri),
                },
            )
        if "refused_files" in selected:
            yield dg.Output(refused, "refused_files", metadata=narrower)
        reasons = {r["_source_file"]: r["_reason"] for r in refused.select("_source_file", "_reason").distinct().collect()}
        rows = ledger_lib.ledger_rows(claims, context.run.run_id, reasons)
        # Recorded after bronze is written: a failed run leaves its files to be claimed again.
        write_partitions(
            session.createDataFrame(rows, ledger_lib.LEDGER_SCHEMA),
            ledger_uri,
            day,
            day + dt.timedelta(days=1),
            narrower=None if requested is None else sql_in("path", [c.path for c in claims]),
        )
    finally:
        parsed.unpersist()


checks = bronze_checks(("bronze", "netflix_titles"), TITLE_FORMATS, TITLE_COLUMNS)
for _dataset, _fmt in LOOKUP_FORMATS.items():
    checks += bronze_checks(("bronze", _dataset), [_fmt], _fmt.columns)

defs = dg.Definitions(
    assets=[landing_zone, pull_lookup_files, *bronze_lookups, bronze_netflix_titles], asset_checks=table_checks(checks)
)
