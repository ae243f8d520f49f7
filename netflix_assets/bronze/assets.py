"""Bronze assets: the landing zone (titles) and the HTTP pulls (lookups)."""


import datetime as dt
import json
from typing import Any

import dagster as dg
from pyspark.sql import DataFrame

from ..io_managers.delta import delta_out
from ..lib.tables import partition_date, read_table, write_partitions
from ..partitions import daily_partitions
from ..resources.http_source import HttpSourceResource, sha256
from ..resources.lake import LakeResource
from ..resources.landing import LandingZoneResource
from ..resources.spark import SparkResource
from ..transforms.bronze import parse_files, split_parsed, with_ingest_date
from ..transforms.csv_records import open_text, scan_file
from ..transforms.formats import CAST, CATEGORY, COUNTRIES, DIRECTORS, TITLE_FORMATS, SourceFormat, union_columns
from . import ledger as ledger_lib
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
    `<lake>/raw/api/<dataset>/<date>/` before anything parses them."""
    import fsspec

    day = context.partition_key
    for key in sorted(context.selected_asset_keys):
        dataset = key.path[-1]
        item = http_source.source_file(dataset)
        url = http_source.url_for(item)
        data = http_source.fetch(item, log=context.log)
        digest = sha256(data)
        uri = f"{lake.api_raw_uri(dataset, day)}/{item.file_name}"
        fs, path = fsspec.core.url_to_fs(uri)
        unchanged = fs.exists(path) and sha256(fs.cat_file(path)) == digest
        if not unchanged:
            fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
            fs.pipe_file(path, data)
        # The copy's mtime is when these bytes were first pulled for the day:
        # an unchanged re-pull keeps it, so bronze rows stay identical.
        fetched_at = fs.modified(path).replace(tzinfo=dt.timezone.utc).isoformat()
        manifest = {"url": url, "uri": fs.unstrip_protocol(path), "sha256": digest, "bytes": len(data), "fetched_at": fetched_at}
        yield dg.Output(
            manifest,
            output_name=dataset,
            metadata={
                "url": url,
                "uri": dg.MetadataValue.path(manifest["uri"]),
                "sha256": digest,
                "bytes": len(data),
                "unchanged_since_last_pull": unchanged,
            },
        )


def _check_lookup_file(uri: str, fmt: SourceFormat) -> None:
    """A lookup file that cannot be parsed stops the pipeline with a clear error."""
    import fsspec

    from ..transforms.formats import detect_format

    def opener():
        return fsspec.open(uri, "rb").open()

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
    )
    def _asset(context: dg.AssetExecutionContext, pulled: dict[str, Any], spark: SparkResource) -> DataFrame:
        _check_lookup_file(pulled["uri"], fmt)
        fetched_at = dt.datetime.fromisoformat(pulled["fetched_at"])
        parsed = parse_files(spark.get_session(), [(pulled["uri"], fetched_at)], [fmt])
        bronze, _ = split_parsed(with_ingest_date(parsed, partition_date(context)), fmt.columns)
        return bronze

    return _asset


bronze_lookups = [_bronze_lookup(dataset, fmt) for dataset, fmt in LOOKUP_FORMATS.items()]


# ------------------------------------------------------------------ landing zone


@dg.multi_asset(
    name="bronze_netflix_titles",
    outs={
        "titles": delta_out(
            ["bronze", "netflix_titles"],
            "Every record of every titles file that landed on the day, strings as read, plus lineage.",
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
)
def bronze_netflix_titles(
    context: dg.AssetExecutionContext, spark: SparkResource, lake: LakeResource, landing: LandingZoneResource
):
    day = partition_date(context)
    session = spark.get_session()
    ledger_uri = lake.table_uri("bronze", "_ingested_files")
    known = ledger_lib.known_claims(read_table(session, ledger_uri))
    now = dt.datetime.now(dt.timezone.utc)
    claims = ledger_lib.claims_for_day(day, known, landing.list_files(), now)
    context.log.info(f"partition {day}: {len(claims)} file(s): {json.dumps([c.path for c in claims])[:2000]}")

    parsed = with_ingest_date(parse_files(session, [(c.path, c.discovered_at) for c in claims], TITLE_FORMATS), day)
    # Parsing runs in Python workers: do it once for every output.
    parsed = parsed.persist()
    try:
        titles, refused = split_parsed(parsed, TITLE_COLUMNS)
        selected = context.op_execution_context.selected_output_names
        if "titles" in selected:
            yield dg.Output(titles, "titles", metadata={"files": len(claims), "ledger": dg.MetadataValue.path(ledger_uri)})
        if "refused_files" in selected:
            yield dg.Output(refused, "refused_files")
        # Recorded after bronze is written: a failed run leaves its files to be claimed again.
        ledger = ledger_lib.ledger_partition(session, claims, context.run.run_id, refused)
        write_partitions(ledger, ledger_uri, day, day + dt.timedelta(days=1))
    finally:
        parsed.unpersist()


checks = bronze_checks(("bronze", "netflix_titles"), TITLE_FORMATS, TITLE_COLUMNS)
for _dataset, _fmt in LOOKUP_FORMATS.items():
    checks += bronze_checks(("bronze", _dataset), [_fmt], _fmt.columns)

defs = dg.Definitions(
    assets=[landing_zone, pull_lookup_files, *bronze_lookups, bronze_netflix_titles], asset_checks=checks
)
