"""Bronze assets: the landing zone (titles) and the HTTP pulls (lookups)."""


import datetime as dt
from typing import Any, Optional

import dagster as dg
from pydantic import Field

from ..io_managers.delta import delta_out
from ..lib import clock
from ..lib.checks import checked_tables
from ..lib.lineage import LINEAGE_KEY, same_columns, set_here
from ..lib.tables import partition_date
from ..partitions import daily_partitions
from ..resources.http_source import HttpSourceResource
from ..resources.lake import LakeResource
from ..resources.landing import LandingZoneResource
from ..resources.spark import SparkResource
from ..transforms.bronze import REFUSED_COLUMNS, SET_ON_READ, parse_files, refused_files, split_parsed, with_ingest_date
from ..transforms.csv_records import open_text, scan_file
from ..transforms.formats import LOOKUPS, TITLE_COLUMNS, TITLE_FORMATS, SourceFormat
from ..resources.databricks import SPARK_RESOURCES
from . import batch
from . import ledger as ledger_lib
from . import pulls
from .checks import bronze_checks


# The landing zone itself: files arrive from outside Dagster (the Auto Loader source).
landing_zone = dg.AssetSpec(
    ["raw", "netflix_titles"],
    description="Titles files dropped into the landing zone `<lake>/raw/netflix_titles/` (any *.csv, nested).",
    group_name="raw",
    kinds={"csv"},
)


# ------------------------------------------------------------------ HTTP pulls


class PullConfig(dg.Config):
    refetch: bool = Field(
        default=False,
        description=(
            "Fetch a past day's file again even though the lake holds that day's copy: the day's "
            "rows then become the source's current content. Today's partition is always fetched "
            "(a conditional request: unchanged content is not downloaded)."
        ),
    )


def _pull_lookup(dataset: str) -> dg.AssetsDefinition:
    """One asset, one step per lookup file (the ADF ForEach copy): a file the source fails to
    serve fails its own step, and the other pulls and their bronze tables still run."""

    @dg.asset(
        key=["raw", dataset],
        io_manager_key="json_io_manager",
        description=f"Byte-for-byte copy of the day's HTTP pull of {dataset} (one item of the ADF ForEach copy).",
        kinds={"http"},
        partitions_def=daily_partitions,
        group_name="raw",
    )
    def _asset(context: dg.AssetExecutionContext, config: PullConfig, http_source: HttpSourceResource, lake: LakeResource):
        """Pull the configured (folder_name, file_name) and keep its bytes under
        `<lake>/raw/api/<dataset>/<date>/` before anything parses them.

        Unchanged content is not downloaded again: the last pull's ETag goes out as
        `If-None-Match`, and without ETags the content hash decides. A past day whose copy
        is stored keeps it (config `refetch` to pull it again). Every pull is recorded
        (`_pull.json` beside the copy, and the materialization)."""
        day = context.partition_key
        dataset_uri, options = lake.api_dataset_uri(dataset), lake.storage_options()
        kept = None
        if day < clock.today().isoformat() and not config.refetch:
            kept = pulls.stored(dataset_uri, day, options, log=context.log)
        if kept is not None:
            context.log.info(f"{kept['uri']}: the copy pulled for {day} is kept (config refetch: true pulls it again)")
            return dg.Output(kept, metadata={**_pull_metadata(kept), "kept_stored_copy": True})
        item = http_source.source_file(dataset)
        record = pulls.pull(http_source, item, dataset_uri, day, log=context.log, storage_options=options)
        return dg.Output(record, metadata={**_pull_metadata(record), "kept_stored_copy": False})

    return _asset


pull_lookups = [_pull_lookup(dataset) for dataset in sorted(LOOKUPS)]


def _pull_metadata(record: dict[str, Any]) -> dict[str, Any]:
    """What the UI shows of one pull (the whole record is the bronze input)."""
    return {
        "url": record["url"],
        "uri": dg.MetadataValue.path(record["uri"]),
        "sha256": record["sha256"],
        "bytes": record["bytes"],
        "http_status": record["http_status"],
        "etag": record["etag"] or "",
        "attempts": record["attempts"],
        "unchanged_since_last_pull": record["unchanged"],
    }


# What to do about a lookup file bronze refuses: the pull keeps its bytes, so the fix is upstream.
LOOKUP_REMEDY = (
    "Nothing of it was loaded. Fix the file where the HTTP source serves it (or point the http_source "
    "resource at a good copy), then materialize this partition's raw pull and this bronze table again."
)


def refused_lookup(uri: str, reason: str) -> dg.Failure:
    return dg.Failure(f"{uri}: refused ({reason}). {LOOKUP_REMEDY}", metadata={"uri": uri, "reason": reason})


def changed_since_pull(uri: str, recorded: str, found: str) -> dg.Failure:
    return dg.Failure(
        f"{uri}: holds other bytes than its pull recorded (sha256 {found[:12]}..., the record says "
        f"{recorded[:12]}...): a later pull of the day was cut before its record was stored. Nothing "
        "of it was loaded. Materialize this partition's raw pull again, then this bronze table.",
        metadata={"uri": uri, "recorded_sha256": recorded, "found_sha256": found},
    )


def _check_lookup_file(
    uri: str, fmt: SourceFormat, storage_options: dict[str, Any], sha256: Optional[str] = None
) -> None:
    """A lookup file that cannot be parsed, or is not the one its pull recorded (`sha256`),
    stops the pipeline with a clear error."""
    import hashlib

    import fsspec

    from ..transforms.formats import detect_format

    def opener():
        return fsspec.open(uri, "rb", **storage_options).open()

    digest = hashlib.sha256()
    defect = scan_file(opener, digest=digest)  # one read for the hash and the scan
    if sha256 is not None and digest.hexdigest() != sha256:
        raise changed_since_pull(uri, sha256, digest.hexdigest())
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
        metadata={LINEAGE_KEY: set_here(same_columns(["raw", dataset], fmt.columns), SET_ON_READ)},
        required_resource_keys=SPARK_RESOURCES,
    )
    def _asset(context: dg.AssetExecutionContext, pulled: dict[str, Any]):
        spark: SparkResource = context.resources.spark
        options = context.resources.lake.storage_options()
        _check_lookup_file(pulled["uri"], fmt, options, pulled.get("sha256"))
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


bronze_lookups = [_bronze_lookup(lookup.table, lookup.format) for lookup in LOOKUPS.values()]


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
            set_here(same_columns(landing_zone.key.path, TITLE_COLUMNS), SET_ON_READ),
        ),
        "refused_files": delta_out(
            ["quarantine", "bronze_netflix_titles"],
            "Every line of the titles files bronze refused as a whole (unknown header, not UTF-8, empty), with `_reason`.",
            set_here(None, REFUSED_COLUMNS),
        ),
    },
    deps=[landing_zone.key],
    partitions_def=daily_partitions,
    group_name="bronze",
    # Both tables or neither: the ledger records a file `ingested` once its rows are stored,
    # and its rows are in one of the two. A selection of one is refused by Dagster, naming the other.
    can_subset=False,
    required_resource_keys={*SPARK_RESOURCES, "landing"},
)
def bronze_netflix_titles(context: dg.AssetExecutionContext, config: BronzeTitlesConfig):
    """Reads the partition's landed files like Auto Loader: each file exactly once,
    recorded in the ledger `bronze/_ingested_files` with its hash and status (`bronze/batch.py`)."""
    lake: LakeResource = context.resources.lake
    landing: LandingZoneResource = context.resources.landing
    session = context.resources.spark.get_session()
    run_id = context.run.run_id
    files = batch.claim_batch(
        session, lake, landing, partition_date(context), run_id, config.files, config.settle_seconds, context.log
    )
    parsed = batch.parse_batch(session, landing, files).persist()  # parsed once, for both outputs
    try:
        out = batch.split_batch(session, parsed, files, lake.table_uri("bronze", ledger_lib.LEDGER_TABLE))
        yield dg.Output(out.titles, "titles", metadata=out.metadata)
        yield dg.Output(out.refused, "refused_files")
        # Recorded after bronze is written: a run stopped before leaves `claimed` rows, which
        # the day's next run reads again (the sensor requests them again).
        batch.record_batch(session, lake, landing, files, run_id, out.reasons)
    finally:
        parsed.unpersist()


checks = bronze_checks(("bronze", "netflix_titles"), TITLE_FORMATS, TITLE_COLUMNS)
for _lookup in LOOKUPS.values():
    checks += bronze_checks(("bronze", _lookup.table), [_lookup.format], _lookup.format.columns)

defs = checked_tables([landing_zone, *pull_lookups, *bronze_lookups, bronze_netflix_titles], checks)
