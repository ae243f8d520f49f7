"""Bronze: landed files -> raw string records with lineage columns."""

from __future__ import annotations

import datetime as dt
from typing import Iterator, Optional, Sequence

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from .csv_records import (
    CHANGED_DURING_READ, DEFAULT_LIMITS, UNREADABLE, ParseLimits, parse_records, stream_sha256, transient,
)
from .formats import SourceFormat, union_columns

LINEAGE_FIELDS = [
    T.StructField("_source_file", T.StringType(), False),
    T.StructField("_source_line", T.IntegerType(), True),
    T.StructField("_source_format", T.StringType(), True),
    T.StructField("_rescued_data", T.StringType(), True),
]
REJECT_REASON = "_reject_reason"
# What a read sets on every bronze row (the file, its line and format, fields no format declares,
# the run's time, the day): no source column feeds them.
SET_ON_READ = (*(f.name for f in LINEAGE_FIELDS), "_ingested_at", "ingest_date")
# The rows of refused files (quarantine/bronze_netflix_titles), `_reason` from REJECT_REASON.
REFUSED_COLUMNS = ("_source_file", "_source_line", "_rescued_data", "_reason", "_ingested_at", "ingest_date")
# An Arrow batch leaves the parser at whichever comes first: a worker holds one batch.
BATCH_ROWS = 10_000
BATCH_BYTES = 32 * 2**20


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
    try:  # a setting, which a Spark Connect session can read too (it has no SparkContext)
        cores = int(spark.conf.get("spark.default.parallelism"))
    except Exception:  # noqa: BLE001 - unset (Databricks), or not readable on serverless
        cores = 8
    return max(1, min(files, 2 * cores))


def _open_uri(uri: str, storage_options: dict, fallback: Optional[str] = None, fallback_only: bool = False):
    """An opener of `uri`, or of `fallback` (its archived copy) once `uri` is gone: a file the
    archive job moves while its old partition is re-read is still read, not refused. With
    `fallback_only`, of `fallback` alone: the name now holds other bytes than the ones read."""
    import fsspec

    def open_binary():
        if fallback_only:
            return fsspec.open(fallback, "rb", **storage_options).open()
        try:
            return fsspec.open(uri, "rb", **storage_options).open()
        except FileNotFoundError:
            if fallback is None:
                raise
            return fsspec.open(fallback, "rb", **storage_options).open()

    return open_binary


def _parse_partition(
    columns: tuple[str, ...], formats: tuple[SourceFormat, ...], storage_options: dict, limits: ParseLimits
):
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
        rows = held = 0
        for batch in batches:
            for uri, ingested_at, size, fallback, fallback_only in zip(
                batch.column("uri").to_pylist(),
                batch.column("ingested_at").to_pylist(),
                batch.column("size").to_pylist(),
                batch.column("fallback").to_pylist(),
                batch.column("fallback_only").to_pylist(),
            ):
                opener = _open_uri(uri, storage_options, fallback, bool(fallback_only))
                records = parse_records(opener, formats, limits, size)
                for rec in records:
                    for c in columns:
                        value = rec.values.get(c)
                        buffer[c].append(value)
                        held += len(value) if value else 0
                    buffer["_source_file"].append(uri)
                    buffer["_source_line"].append(rec.line)
                    buffer["_source_format"].append(rec.source_format)
                    buffer["_rescued_data"].append(rec.rescued)
                    buffer[REJECT_REASON].append(rec.reject_reason)
                    buffer["_ingested_at"].append(ingested_at)
                    rows += 1
                    held += len(rec.rescued) if rec.rescued else 0
                    if rows >= BATCH_ROWS or held >= BATCH_BYTES:
                        yield pa.RecordBatch.from_pydict(buffer, schema=arrow_schema)
                        buffer = {n: [] for n in names}
                        rows = held = 0
        if rows:
            yield pa.RecordBatch.from_pydict(buffer, schema=arrow_schema)

    return run


FileToParse = tuple  # (uri, ingested_at[, listed size or None[, its archived copy or None[, read that copy only]]])


def _rows(files: Sequence, width: int) -> list[tuple]:
    """One row per uri, padded with None to `width` columns, sorted (a bare uri is allowed)."""
    padded = {}
    for f in files:
        f = (f,) if isinstance(f, str) else tuple(f)
        padded[f[0]] = (f + (None,) * width)[:width]
    return sorted(padded.values())


def parse_files(
    spark: SparkSession,
    files: Sequence[FileToParse],
    formats: Sequence[SourceFormat],
    storage_options: Optional[dict] = None,
    limits: ParseLimits = DEFAULT_LIMITS,
) -> DataFrame:
    """Parse (uri, ingested_at[, size[, fallback[, fallback_only]]]) files into records (streamed in Spark tasks).

    `_ingested_at` is the time the file was first ingested (not the time of this
    run), so re-materializing a partition reproduces the same rows. `size` is the
    listing's: a file whose size moved since is refused (`changed_during_read`).
    `fallback` is where the bytes are once `uri` is gone (the file's archived copy); with
    `fallback_only` true, the only place they are (`uri` holds other bytes since).

    Rows with a non-null `_reject_reason` belong to files refused as a whole
    (unknown header, not UTF-8, empty, a line over the limit, unreadable...): they
    carry raw evidence in `_rescued_data` (bounded by `limits.evidence_bytes`).
    A file refused part-way also has data rows: `split_parsed` drops them.

    `storage_options` are the fsspec options executors open the URIs with.
    """
    columns = union_columns(formats)
    schema = parsed_schema(columns)
    rows = _rows(files, 5)
    if not rows:
        return spark.createDataFrame([], schema)
    frame = spark.createDataFrame(
        rows, "uri string, ingested_at timestamp, size long, fallback string, fallback_only boolean"
    ).repartition(file_tasks(spark, len(rows)))
    return frame.mapInArrow(_parse_partition(columns, tuple(formats), dict(storage_options or {}), limits), schema)


def _digest_one(open_binary, expected_size: Optional[int], chunk_bytes: int) -> tuple[Optional[str], Optional[str]]:
    """(sha256, None) or (None, the file's refusal): one file's failure is its own."""
    try:
        digest, size = stream_sha256(open_binary, chunk_bytes)
    except Exception as error:  # noqa: BLE001 - permission, a directory, gone, a name the store refuses
        if transient(error):  # the store's fault, not the file's: the run fails, and is retried
            raise
        message = " ".join(f"{type(error).__name__}: {error}".split())[:300]
        return None, f"{UNREADABLE}: {message}"
    if expected_size is not None and size != expected_size:
        return None, f"{CHANGED_DURING_READ}: listed with {expected_size} bytes, read {size}"
    return digest, None


def _digest_partition(storage_options: dict, chunk_bytes: int = 4 << 20):
    import pyarrow as pa

    def run(batches: Iterator["pa.RecordBatch"]) -> Iterator["pa.RecordBatch"]:
        for batch in batches:
            uris = batch.column("uri").to_pylist()
            sizes = batch.column("size").to_pylist() if "size" in batch.schema.names else [None] * len(uris)
            fallbacks = batch.column("fallback").to_pylist() if "fallback" in batch.schema.names else [None] * len(uris)
            results = [
                _digest_one(_open_uri(uri, storage_options, fallback), size, chunk_bytes)
                for uri, size, fallback in zip(uris, sizes, fallbacks)
            ]
            yield pa.RecordBatch.from_pydict(
                {"uri": uris, "sha256": [r[0] for r in results], "error": [r[1] for r in results]}
            )

    return run


def file_digests(
    spark: SparkSession, files: Sequence[FileToParse], storage_options: Optional[dict] = None
) -> tuple[dict[str, str], dict[str, str]]:
    """({uri: sha256}, {uri: refusal}) for (uri[, size[, fallback]]) files, hashed on the
    executors in chunks (one task per file), so no file is ever read whole into the driver.
    A file that cannot be read, or whose size moved since the listing, gets a refusal
    instead of a hash; the others are unaffected."""
    if not files:
        return {}, {}
    rows = _rows(files, 3)
    frame = spark.createDataFrame(rows, "uri string, size long, fallback string").repartition(
        file_tasks(spark, len(rows))
    )
    out = frame.mapInArrow(_digest_partition(dict(storage_options or {})), "uri string, sha256 string, error string")
    digests, errors = {}, {}
    for r in out.collect():
        if r["error"] is not None:
            errors[r["uri"]] = r["error"]
        else:
            digests[r["uri"]] = r["sha256"]
    return digests, errors


def with_ingest_date(df: DataFrame, ingest_date: dt.date) -> DataFrame:
    return df.withColumn("ingest_date", F.lit(ingest_date).cast("date"))


def accepted(parsed: DataFrame) -> Column:
    return F.col(REJECT_REASON).isNull()


def refused_files(parsed: DataFrame) -> dict[str, str]:
    """{file: its refusal} for the files a parse refused (a Spark job over `parsed`: persist it first)."""
    rows = parsed.where(~accepted(parsed)).select("_source_file", REJECT_REASON).distinct().collect()
    return {r["_source_file"]: r[REJECT_REASON] for r in rows}


def split_parsed(
    parsed: DataFrame, columns: Sequence[str], refused: Sequence[str] = ()
) -> tuple[DataFrame, DataFrame]:
    """(bronze rows, rows of refused files with `_reason`) from parsed records.

    `refused` names files refused part-way through (`refused_files`): their rows parsed
    before the defect are not bronze rows either, since a file is ingested whole or not at all."""
    columns = list(columns)
    keep = accepted(parsed)
    if refused:
        keep = keep & ~F.col("_source_file").isin(*sorted(refused))
    bronze = parsed.where(keep).select(*columns, *SET_ON_READ)
    refused = parsed.where(~accepted(parsed)).select(
        *(F.col(REJECT_REASON).alias(c) if c == "_reason" else F.col(c) for c in REFUSED_COLUMNS)
    )
    return bronze, refused
