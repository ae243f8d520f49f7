"""Bronze: landed files -> raw string records with lineage columns."""

from __future__ import annotations

import datetime as dt
from typing import Iterator, Optional, Sequence

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from .csv_records import parse_records
from .formats import SourceFormat, union_columns

LINEAGE_FIELDS = [
    T.StructField("_source_file", T.StringType(), False),
    T.StructField("_source_line", T.IntegerType(), True),
    T.StructField("_source_format", T.StringType(), True),
    T.StructField("_rescued_data", T.StringType(), True),
]
REJECT_REASON = "_reject_reason"
BATCH_ROWS = 10_000


def parsed_schema(columns: Sequence[str]) -> T.StructType:
    return T.StructType(
        [T.StructField(c, T.StringType(), True) for c in columns]
        + LINEAGE_FIELDS
        + [
            T.StructField(REJECT_REASON, T.StringType(), True),
            T.StructField("_ingested_at", T.TimestampType(), True),
        ]
    )


def bronze_schema(columns: Sequence[str]) -> T.StructType:
    """The contract's bronze columns: source strings + lineage + partition."""
    return T.StructType(
        [T.StructField(c, T.StringType(), True) for c in columns]
        + LINEAGE_FIELDS
        + [
            T.StructField("_ingested_at", T.TimestampType(), False),
            T.StructField("ingest_date", T.DateType(), False),
        ]
    )


def file_tasks(spark: SparkSession, files: int) -> int:
    """Spark tasks for per-file work (hashing, parsing): enough to keep every core busy, never
    one per file. A task costs scheduling plus a Python-worker round trip, and its partition
    becomes one more small file in every Delta write downstream: 100 files made 100 tasks,
    and 1,000 landed files made 1,000. Files are dealt round-robin; each task streams its own."""
    try:
        cores = spark.sparkContext.defaultParallelism
    except Exception:  # no SparkContext (Spark Connect)
        cores = 8
    return max(1, min(files, 2 * cores))


def _open_uri(uri: str, storage_options: dict):
    import fsspec

    return lambda: fsspec.open(uri, "rb", **storage_options).open()


def _parse_partition(columns: tuple[str, ...], formats: tuple[SourceFormat, ...], storage_options: dict):
    import pyarrow as pa

    arrow_schema = pa.schema(
        [pa.field(c, pa.string()) for c in columns]
        + [
            pa.field("_source_file", pa.string(), nullable=False),
            pa.field("_source_line", pa.int32()),
            pa.field("_source_format", pa.string()),
            pa.field("_rescued_data", pa.string()),
            pa.field(REJECT_REASON, pa.string()),
            pa.field("_ingested_at", pa.timestamp("us", tz="UTC")),
        ]
    )
    names = arrow_schema.names

    def run(batches: Iterator["pa.RecordBatch"]) -> Iterator["pa.RecordBatch"]:
        buffer: dict[str, list] = {n: [] for n in names}
        size = 0
        for batch in batches:
            for uri, ingested_at in zip(batch.column("uri").to_pylist(), batch.column("ingested_at").to_pylist()):
                for rec in parse_records(_open_uri(uri, storage_options), formats):
                    for c in columns:
                        buffer[c].append(rec.values.get(c))
                    buffer["_source_file"].append(uri)
                    buffer["_source_line"].append(rec.line)
                    buffer["_source_format"].append(rec.source_format)
                    buffer["_rescued_data"].append(rec.rescued)
                    buffer[REJECT_REASON].append(rec.reject_reason)
                    buffer["_ingested_at"].append(ingested_at)
                    size += 1
                    if size >= BATCH_ROWS:
                        yield pa.RecordBatch.from_pydict(buffer, schema=arrow_schema)
                        buffer = {n: [] for n in names}
                        size = 0
        if size:
            yield pa.RecordBatch.from_pydict(buffer, schema=arrow_schema)

    return run


def parse_files(
    spark: SparkSession,
    files: Sequence[tuple[str, dt.datetime]],
    formats: Sequence[SourceFormat],
    storage_options: Optional[dict] = None,
) -> DataFrame:
    """Parse (uri, ingested_at) files into records (one Spark task per file, streamed).

    `_ingested_at` is the time the file was first ingested (not the time of this
    run), so re-materializing a partition reproduces the same rows.

    Rows with a non-null `_reject_reason` belong to files refused as a whole
    (unknown header, not UTF-8, empty...): they carry each raw line in
    `_rescued_data` so that the quarantine keeps everything.

    `storage_options` are the fsspec options executors open the URIs with.
    """
    columns = union_columns(formats)
    schema = parsed_schema(columns)
    files = sorted(dict(files).items())
    if not files:
        return spark.createDataFrame([], schema)
    frame = spark.createDataFrame(files, "uri string, ingested_at timestamp").repartition(file_tasks(spark, len(files)))
    return frame.mapInArrow(_parse_partition(columns, tuple(formats), dict(storage_options or {})), schema)


def _digest_partition(storage_options: dict, chunk_bytes: int = 4 << 20):
    import hashlib

    import fsspec
    import pyarrow as pa

    def run(batches: Iterator["pa.RecordBatch"]) -> Iterator["pa.RecordBatch"]:
        for batch in batches:
            uris, digests = batch.column("uri").to_pylist(), []
            for uri in uris:
                digest = hashlib.sha256()
                with fsspec.open(uri, "rb", **storage_options) as stream:
                    while chunk := stream.read(chunk_bytes):
                        digest.update(chunk)
                digests.append(digest.hexdigest())
            yield pa.RecordBatch.from_pydict({"uri": uris, "sha256": digests})

    return run


def file_digests(spark: SparkSession, uris: Sequence[str], storage_options: Optional[dict] = None) -> dict[str, str]:
    """uri -> sha256 of its bytes, hashed on the executors in chunks (one task per
    file), so no file is ever read whole into the driver."""
    if not uris:
        return {}
    unique = sorted(set(uris))
    frame = spark.createDataFrame([(u,) for u in unique], "uri string").repartition(file_tasks(spark, len(unique)))
    rows = frame.mapInArrow(_digest_partition(dict(storage_options or {})), "uri string, sha256 string").collect()
    return {r["uri"]: r["sha256"] for r in rows}


def with_ingest_date(df: DataFrame, ingest_date: dt.date) -> DataFrame:
    return df.withColumn("ingest_date", F.lit(ingest_date).cast("date"))


def accepted(parsed: DataFrame) -> Column:
    return F.col(REJECT_REASON).isNull()


def split_parsed(parsed: DataFrame, columns: Sequence[str]) -> tuple[DataFrame, DataFrame]:
    """(bronze rows, rows of refused files with `_reason`) from parsed records."""
    lineage = [f.name for f in LINEAGE_FIELDS] + ["_ingested_at", "ingest_date"]
    columns = list(columns)
    bronze = parsed.where(accepted(parsed)).select(*columns, *lineage)
    refused = parsed.where(~accepted(parsed)).select(
        "_source_file", "_source_line", "_rescued_data",
        F.col(REJECT_REASON).alias("_reason"), "_ingested_at", "ingest_date",
    )
    return bronze, refused
