"""Baseline: the lakehouse as the original notebooks would build it, in ONE
SparkSession, with plain PySpark: no Dagster run, no asset checks, no file
ledger, no hashing. The performance reference for the asset graph.

A PERFORMANCE BASELINE ONLY, not a proof of correctness: its silver and gold
are computed by the project's own transforms (`netflix_assets.transforms`), so
a bug in them is in both lakes and `compare_lakes` finding them identical
proves only that the asset graph's wiring and IO add no difference. The gold
values themselves are proven by `netflix_assets_tests/gold/test_independent_model.py`,
which compares every gold table with an independent implementation
(`netflix_assets_tests/independent_model.py`, no project code) built from the
data contract.

    python -m benchmarks.baseline --titles FILE [FILE ...] --lookups DIR --out DIR --day YYYY-MM-DD

What it does (for one `ingest_date` partition D)
-----------------------------------------------
- bronze: Spark's built-in CSV reader (`spark.read.csv`, an explicit all-string
  schema, header, multiLine, quote/escape '"', UTF-8, no inferSchema), the
  notebooks' `spark.read` / Auto Loader approach. The format of each titles
  file (tutorial or kaggle) is told by its header line, read on the driver;
  the files of one format are read in one `spark.read.csv` call. The lineage
  columns the silver transforms use are added: `_source_file`
  (`_metadata.file_path`), `_source_format`, `_ingested_at` (the run's start,
  one value), `ingest_date` = D, `_rescued_data` (Spark's corrupt-record
  column: the raw record when its field count is not the header's, the same
  rule as the pipeline's parser) and `_source_line` (APPROXIMATED: 1 + the
  record's ordinal in its file; see below).
- silver and gold: the project's own transform functions
  (`netflix_assets.transforms.silver / gold / dimensional / kpis`), called in
  the order the assets call them; each table is written as Delta under
  `<out>/<layer>/<table>`, `partitionBy("ingest_date")`, mode overwrite (with
  dynamic partition overwrite, so other days of an existing output survive and
  gold's as-of-D snapshot still sees earlier silver partitions). Each layer is
  read back from the Delta table just written, as a notebook per layer does
  (and as the asset graph's IO manager does). The DataFrames the assets
  persist (silver classification, ranked gold titles) are persisted here too,
  so both do the same work. Same table set as the pipeline, ledger excepted.
- row counts come from each Delta commit's `operationMetrics.numOutputRows`.

Importing `netflix_assets` loads its Dagster definitions module (the package's
`__init__` does); nothing of Dagster runs.

Expected differences from the pipeline (see `compare_lakes`)
------------------------------------------------------------
Measured on the bundled real data (tutorial titles + Kaggle titles in one
partition, the 4 tutorial lookups), comparing EVERY row of every table (not
just a sample) against the asset graph's lake: all 5 silver and 20 gold
tables, the 4 bronze lookups, and quarantine.{bronze_netflix_titles,
gold_netflix_titles, netflix_cast, netflix_category, netflix_countries,
netflix_directors} are identical (row counts, and every non-lineage column of
every row). Only bronze.netflix_titles and quarantine.netflix_titles differ,
for a reason inherent to Spark's CSV reader:

1. Empty vs null (bronze.netflix_titles, quarantine.netflix_titles): the
   pipeline's csv-module parser keeps an empty field as "" (a missing trailing
   field as null); Spark's CSV reader returns null for every empty field
   (`nullValue` only picks which OTHER text also becomes null; an unquoted
   empty field is null whatever the options). On the bundled data: 10,578
   empty fields of bronze titles (tutorial: duration_seasons 4,265,
   duration_minutes 1,969, rating 13, date_added 13, ...; Kaggle: director
   2,634, country 831, cast 825, ...), among them the show_id of the 4 halves
   of the 2 broken tutorial records, so those 4 rows carry show_id "" in the
   pipeline's bronze and quarantine and null in the baseline's. The bundled
   lookup files have no empty field. With "" taken as null
   (`empty_equals_null=True`) bronze and every quarantine are identical too.
   Silver and gold are unaffected because silver maps blank to null before
   using a value and no accepted record has an empty title or description;
   a future file with an accepted empty title/description WOULD differ there
   ("" in the pipeline's silver, null in the baseline's).
2. `_source_line` is not the physical line: Spark's reader has no line
   numbers. It is approximated by 1 + the record's ordinal in its file
   (`monotonically_increasing_id` order within the file's single multiLine
   partition), exact until the first record spanning several lines or a blank
   line: Kaggle's records starting at lines 8203 and 8422 span two lines, so
   later Kaggle records are 1, then 2 lines low; tutorial lines are exact. The
   order is kept, so dedup's "highest line wins" picks the same record.
   Lineage and ingestion-time columns (`_source_file`, `_source_line`,
   `_ingested_at` (here: the run's start; the pipeline: the file's discovery
   or the pull's time), `_rescued_data`) are not compared.
3. Whole-file refusal: the pipeline quarantines every raw line of a file that
   is not UTF-8, holds NUL bytes, is empty, or has an unknown header, and
   reads none of its records. Here only the header is checked (on the driver):
   a file with an unknown header (or empty) goes to
   quarantine.bronze_netflix_titles as raw lines (`spark.read.text`,
   `_source_line` null); an undecodable or NUL-holding file is read by Spark
   anyway (replacement characters) and its rows flow on into silver. No
   bundled file is refused: that table is empty in both lakes.
4. Malformed records: Spark's corrupt-record column flags a record whose field
   count is not the header's, the pipeline's parser rescues the same records
   (checked on a file with a record split over two lines, an extra field, a
   missing one and a quoted multi-line field), so silver quarantines the same
   ones as `malformed_record`. The rescued text itself is not compared; a
   record Spark and the csv module split differently (an unbalanced quote) may
   still differ. No bundled record has a wrong field count in either reader.

The two broken tutorial records (lines 2019-2020 and 4526-4527, each split
over two physical lines by a bad export) are read identically by both readers
as 4 records with an empty show_id -> quarantine, reason `missing_show_id`.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import math
import sys
import time
from functools import reduce
from typing import Any, Mapping, Optional, Sequence, Union

from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from netflix_assets.lib.delta import new_table_options
from netflix_assets.transforms import dimensional as d
from netflix_assets.transforms import identity as ident
from netflix_assets.transforms import gold as g
from netflix_assets.transforms import history as h
from netflix_assets.transforms import kpis as k
from netflix_assets.transforms import silver as s
from netflix_assets.transforms.formats import (
    LOOKUPS, TITLE_FORMATS, SourceFormat, detect_format, union_columns,
)

PARTITION = "ingest_date"
TITLE_COLUMNS = union_columns(TITLE_FORMATS)
LOOKUP_FORMATS: dict[str, SourceFormat] = {table: LOOKUPS[table].format for table in sorted(LOOKUPS)}
LINEAGE = ["_source_file", "_source_line", "_source_format", "_rescued_data", "_ingested_at", PARTITION]

# The pipeline's table set (`<layer>/<table>`), bronze's file ledger excepted.
BRONZE_TABLES = ["bronze/netflix_titles", *[f"bronze/{t}" for t in LOOKUP_FORMATS]]
SILVER_TABLES = ["silver/netflix_titles", *[f"silver/{t}" for t in LOOKUPS]]
QUARANTINE_TABLES = [
    "quarantine/bronze_netflix_titles",
    "quarantine/netflix_titles",
    *[f"quarantine/{t}" for t in LOOKUPS],
    "quarantine/gold_netflix_titles",
]
GOLD_MODEL_TABLES = [
    "gold/title_source_ids", "gold/title_match_review", "gold/dim_title", "gold/dim_title_history", "gold/dim_person", "gold/dim_country", "gold/dim_genre", "gold/dim_date",
    "gold/bridge_title_person", "gold/bridge_title_country", "gold/bridge_title_genre", "gold/fact_title_added",
]
KPI_TABLES = [
    "gold/kpi_titles_added_by_month", "gold/kpi_top_countries", "gold/kpi_genre_by_year",
    "gold/kpi_rating_mix", "gold/kpi_top_people", "gold/kpi_movie_minutes_by_decade",
]
GOLD_TABLES = ["gold/netflix_titles", *[f"gold/{t}" for t in LOOKUPS], *GOLD_MODEL_TABLES, *KPI_TABLES]
ALL_TABLES = [*BRONZE_TABLES, *SILVER_TABLES, *QUARANTINE_TABLES, *GOLD_TABLES]


# ------------------------------------------------------------------ bronze


def _csv_schema(fmt: SourceFormat) -> T.StructType:
    # `_rescued_data` doubles as Spark's corrupt-record column (PERMISSIVE mode).
    return T.StructType(
        [T.StructField(c, T.StringType(), True) for c in fmt.columns]
        + [T.StructField("_rescued_data", T.StringType(), True)]
    )


def read_csv(spark: SparkSession, paths: Sequence[str], fmt: SourceFormat) -> DataFrame:
    """The files of one format with Spark's CSV reader: strings as read + `_rescued_data`,
    `_source_file`, `_source_line` (approximate: 1 + ordinal of the record in its file)."""
    frame = (
        spark.read.schema(_csv_schema(fmt))
        .option("header", True)
        .option("multiLine", True)
        .option("quote", '"')
        .option("escape", '"')
        .option("encoding", "UTF-8")
        .option("mode", "PERMISSIVE")
        .option("columnNameOfCorruptRecord", "_rescued_data")
        .csv(list(paths))
    )
    # A multiLine CSV file is never split: its records come in file order within
    # one partition, so this id increases along each file.
    frame = frame.select("*", F.col("_metadata.file_path").alias("_source_file"),
                         F.monotonically_increasing_id().alias("_order"))
    ordinal = F.row_number().over(Window.partitionBy("_source_file").orderBy("_order"))
    return frame.withColumn("_source_line", (ordinal + 1).cast("int")).drop("_order")


def _header(path: str) -> str:
    import fsspec

    with fsspec.open(path, "rb") as stream:
        return stream.readline().decode("utf-8", errors="replace")


def _with_lineage(df: DataFrame, columns: Sequence[str], fmt: SourceFormat, ingested_at: dt.datetime,
                  day: dt.date) -> DataFrame:
    present = set(df.columns)
    return df.select(
        *[F.col(c) if c in present else F.lit(None).cast("string").alias(c) for c in columns],
        "_source_file",
        "_source_line",
        F.lit(fmt.name).alias("_source_format"),
        "_rescued_data",
        F.lit(ingested_at).cast("timestamp").alias("_ingested_at"),
        F.lit(day).cast("date").alias(PARTITION),
    )


def bronze_titles(spark: SparkSession, files: Sequence[str], ingested_at: dt.datetime,
                  day: dt.date) -> tuple[DataFrame, DataFrame]:
    """(bronze titles of every recognised file, raw lines of the files with an unknown header)."""
    by_format: dict[SourceFormat, list[str]] = {}
    unknown: list[tuple[str, str]] = []
    for path in files:
        header = _header(path)
        fmt = detect_format(header, TITLE_FORMATS)
        if fmt is None:
            unknown.append((path, header))
        else:
            by_format.setdefault(fmt, []).append(path)
    frames = [
        _with_lineage(read_csv(spark, paths, fmt), TITLE_COLUMNS, fmt, ingested_at, day)
        for fmt, paths in by_format.items()
    ]
    if frames:
        titles = reduce(DataFrame.unionByName, frames)
    else:
        schema = T.StructType(
            [T.StructField(c, T.StringType()) for c in TITLE_COLUMNS]
            + [T.StructField("_source_file", T.StringType()), T.StructField("_source_line", T.IntegerType()),
               T.StructField("_source_format", T.StringType()), T.StructField("_rescued_data", T.StringType()),
               T.StructField("_ingested_at", T.TimestampType()), T.StructField(PARTITION, T.DateType())]
        )
        titles = spark.createDataFrame([], schema)
    refused_schema = (
        "_source_file string, _source_line int, _rescued_data string, _reason string, "
        "_ingested_at timestamp, ingest_date date"
    )
    refused = spark.createDataFrame([], refused_schema)
    for path, header in unknown:
        reason = "empty_file" if not header.strip() else f"unknown_header: {header.strip()[:200]!r}"
        lines = spark.read.text(path).select(
            F.col("_metadata.file_path").alias("_source_file"),
            F.lit(None).cast("int").alias("_source_line"),
            F.col("value").alias("_rescued_data"),
            F.lit(reason).alias("_reason"),
            F.lit(ingested_at).cast("timestamp").alias("_ingested_at"),
            F.lit(day).cast("date").alias(PARTITION),
        )
        refused = refused.unionByName(lines)
    return titles, refused


def bronze_lookup(spark: SparkSession, path: str, fmt: SourceFormat, ingested_at: dt.datetime,
                  day: dt.date) -> DataFrame:
    header = _header(path)
    if detect_format(header, [fmt]) is None:
        raise ValueError(f"{path}: unknown header {header.strip()[:200]!r}; expected {','.join(fmt.columns)}")
    return _with_lineage(read_csv(spark, [path], fmt), fmt.columns, fmt, ingested_at, day)


def lookup_paths(lookups: Union[str, Mapping[str, str], Sequence[str]]) -> dict[str, str]:
    """dataset -> file: from a directory holding `<dataset>.csv`, a mapping, or a list of files named so."""
    if isinstance(lookups, Mapping):
        paths = dict(lookups)
    elif isinstance(lookups, str):
        paths = {dataset: f"{lookups.rstrip('/')}/{dataset}.csv" for dataset in LOOKUP_FORMATS}
    else:
        paths = {str(p).rsplit("/", 1)[-1].removesuffix(".csv"): str(p) for p in lookups}
    missing = sorted(set(LOOKUP_FORMATS) - set(paths))
    if missing:
        raise ValueError(f"no lookup file for {missing}")
    return {dataset: str(paths[dataset]) for dataset in LOOKUP_FORMATS}


# ------------------------------------------------------------------ writes


def committed_rows(spark: SparkSession, path: str) -> int:
    """numOutputRows of the table's latest Delta commit (no count())."""
    metrics = spark.sql(f"DESCRIBE HISTORY delta.`{path}` LIMIT 1").select("operationMetrics").first()[0] or {}
    return int(metrics.get("numOutputRows", 0))


class _Lake:
    """The notebook's writes and reads: `<out>/<layer>/<table>`, one partition."""

    def __init__(self, spark: SparkSession, out: str, day: dt.date, timings: Optional[dict[str, float]]):
        self.spark, self.out, self.day = spark, out.rstrip("/"), day
        self.rows: dict[str, int] = {}
        self.timings = timings if timings is not None else {}

    def path(self, table: str) -> str:
        return f"{self.out}/{table}"

    def write(self, table: str, df: DataFrame) -> None:
        start = time.perf_counter()
        (
            df.write.format("delta")
            .options(**new_table_options(df.columns))  # the pipeline's table layout (same statistics)
            .mode("overwrite")
            .option("partitionOverwriteMode", "dynamic")
            .partitionBy(PARTITION)
            .save(self.path(table))
        )
        self.rows[table] = committed_rows(self.spark, self.path(table))
        self.timings[table] = time.perf_counter() - start

    def read(self, table: str, as_of: bool = False) -> DataFrame:
        df = self.spark.read.format("delta").load(self.path(table))
        day = F.lit(self.day).cast("date")
        return df.where(F.col(PARTITION) <= day) if as_of else df.where(F.col(PARTITION) == day)


# ------------------------------------------------------------------ the run


def _as_date(day: Union[str, dt.date]) -> dt.date:
    return day if isinstance(day, dt.date) else dt.date.fromisoformat(str(day))


def run_baseline(
    spark: SparkSession,
    titles_files: Sequence[str],
    lookup_dir_or_files: Union[str, Mapping[str, str], Sequence[str]],
    out_dir: str,
    day: Union[str, dt.date],
    timings: Optional[dict[str, float]] = None,
) -> dict[str, int]:
    """Build every table of partition `day` under `out_dir`; returns `<layer>/<table>` -> rows
    written (Delta commit metrics). `timings`, when given, receives seconds per table write."""
    day = _as_date(day)
    ingested_at = dt.datetime.now(dt.timezone.utc)
    lake = _Lake(spark, str(out_dir), day, timings)
    lookups = lookup_paths(lookup_dir_or_files)

    # bronze
    titles, refused_files = bronze_titles(spark, [str(f) for f in titles_files], ingested_at, day)
    lake.write("bronze/netflix_titles", titles)
    lake.write("quarantine/bronze_netflix_titles", refused_files)
    for dataset, fmt in LOOKUP_FORMATS.items():
        lake.write(f"bronze/{dataset}", bronze_lookup(spark, lookups[dataset], fmt, ingested_at, day))

    # silver
    bronze = lake.read("bronze/netflix_titles")
    classified = s.classify_titles(bronze).persist()
    try:
        lake.write("silver/netflix_titles", s.silver_titles(classified))
        lake.write("quarantine/netflix_titles", s.refused(classified))
    finally:
        classified.unpersist()
    for table, lookup in LOOKUPS.items():
        classified = s.classify_lookup(s.lookup_candidates(lookup, lake.read(f"bronze/{table}"), bronze)).persist()
        try:
            lake.write(f"silver/{table}", s.silver_lookup(lookup, classified))
            lake.write(f"quarantine/{table}", s.quarantine_lookup(lookup, classified))
        finally:
            classified.unpersist()

    # gold: parity tables (snapshots as of the day)
    ranked = g.gold_titles(g.snapshot_as_of(lake.read("silver/netflix_titles", as_of=True), day, first=True)).persist()
    try:
        lake.write("gold/netflix_titles", ranked.where(F.col("_reason").isNull()).drop("_reason"))
        lake.write("quarantine/gold_netflix_titles", ranked.where(F.col("_reason").isNotNull()))
    finally:
        ranked.unpersist()
    for table, lookup in LOOKUPS.items():
        lake.write(f"gold/{table}", g.gold_lookup(g.snapshot_as_of(lake.read(f"silver/{table}", as_of=True), day),
                                                  lookup.value_column))

    # gold: dimensional model
    gold_titles = lake.read("gold/netflix_titles")
    cast, directors = lake.read("gold/netflix_cast"), lake.read("gold/netflix_directors")
    countries, category = lake.read("gold/netflix_countries"), lake.read("gold/netflix_category")
    pairs = ident.scored_pairs(gold_titles, cast, directors).persist()
    lake.write("gold/title_source_ids", ident.source_ids(gold_titles, pairs))
    lake.write("gold/title_match_review", ident.review(pairs))
    pairs.unpersist()
    ids = lake.read("gold/title_source_ids")
    lake.write("gold/dim_title", d.dim_title(gold_titles, ids))
    lake.write("gold/dim_title_history", h.title_history(h.title_versions(
        lake.read("gold/dim_title", as_of=True), lake.read("gold/netflix_countries", as_of=True),
        lake.read("gold/netflix_category", as_of=True)), day))
    lake.write("gold/dim_person", d.dim_person(cast, directors))
    lake.write("gold/dim_country", d.dim_value(countries, "country", "country"))
    lake.write("gold/dim_genre", d.dim_value(category, "category", "genre"))
    lake.write("gold/dim_date", d.dim_date(gold_titles))
    lake.write("gold/bridge_title_person", d.bridge_title_person(cast, directors, ids))
    lake.write("gold/bridge_title_country", d.bridge_title_value(countries, "country", "country", ids))
    lake.write("gold/bridge_title_genre", d.bridge_title_value(category, "category", "genre", ids))
    lake.write("gold/fact_title_added", d.fact_title_added(gold_titles, ids))

    # gold: KPIs
    fact = lake.read("gold/fact_title_added")
    lake.write("gold/kpi_titles_added_by_month", k.kpi_titles_added_by_month(fact))
    lake.write("gold/kpi_top_countries",
               k.kpi_top_countries(lake.read("gold/bridge_title_country"), lake.read("gold/dim_country"), fact))
    lake.write("gold/kpi_genre_by_year",
               k.kpi_genre_by_year(lake.read("gold/bridge_title_genre"), lake.read("gold/dim_genre"), fact))
    lake.write("gold/kpi_rating_mix", k.kpi_rating_mix(lake.read("gold/dim_title")))
    lake.write("gold/kpi_top_people",
               k.kpi_top_people(lake.read("gold/bridge_title_person"), lake.read("gold/dim_person"), fact))
    lake.write("gold/kpi_movie_minutes_by_decade", k.kpi_movie_minutes_by_decade(fact))
    return lake.rows


# ------------------------------------------------------------------ comparing two lakes

# Lineage and ingestion-time columns: they say where and when a row was read, not what it is.
IGNORED_COLUMNS = frozenset({"_ingested_at", "_source_line", "_source_file", "_first_ingested", "_rescued_data",
                             "_reject_reason", "run_id"})

# The key rows are sampled and matched by (not necessarily unique: rows of a key are compared as a multiset).
TABLE_KEYS: dict[str, tuple[str, ...]] = {
    **{f"{layer}/netflix_titles": ("show_id",) for layer in ("bronze", "silver", "gold", "quarantine")},
    "quarantine/gold_netflix_titles": ("show_id",),
    **{f"bronze/{t}": ("show_id", LOOKUP_FORMATS[t].columns[0]) for t in LOOKUP_FORMATS},
    **{f"{layer}/{t}": ("show_id", lookup.value_column) for t, lookup in LOOKUPS.items()
       for layer in ("silver", "gold", "quarantine")},
    "gold/title_source_ids": ("show_id",),
    "gold/title_match_review": ("show_id", "candidate_show_id"),
    "gold/dim_title": ("title_key",),
    "gold/dim_title_history": ("title_key", "valid_from"),
    "gold/fact_title_added": ("title_key",),
    "gold/dim_person": ("person_key",),
    "gold/dim_country": ("country_key",),
    "gold/dim_genre": ("genre_key",),
    "gold/dim_date": ("date",),
    "gold/bridge_title_person": ("show_id", "person_key", "role"),
    "gold/bridge_title_country": ("show_id", "country_key"),
    "gold/bridge_title_genre": ("show_id", "genre_key"),
    "gold/kpi_titles_added_by_month": ("month", "type"),
    "gold/kpi_top_countries": ("country",),
    "gold/kpi_genre_by_year": ("year_added", "genre"),
    "gold/kpi_rating_mix": ("rating", "type"),
    "gold/kpi_top_people": ("role", "name"),
    "gold/kpi_movie_minutes_by_decade": ("release_decade",),
}


@dataclasses.dataclass(frozen=True)
class Difference:
    table: str
    kind: str  # missing_table | columns | type | row_count | rows | value
    detail: str
    key: Optional[tuple] = None
    column: Optional[str] = None
    a: Any = None
    b: Any = None

    def __str__(self) -> str:
        where = f" key={self.key}" if self.key is not None else ""
        col = f" column={self.column}" if self.column else ""
        values = f" a={self.a!r} b={self.b!r}" if self.kind == "value" else ""
        return f"{self.table}: {self.kind}{where}{col}{values} {self.detail}".rstrip()


def _load(lake: str, table: str, day: dt.date):
    """(Delta schema as {column: type}, the partition's rows as an Arrow table), or None.

    Read with delta-rs, not Spark: comparing the bench's 90 tables costs ~2 s of Delta log per
    table in a Spark process (a snapshot and a file-filtering job per query), milliseconds here."""
    import pyarrow.compute as pc
    from deltalake import DeltaTable

    path = f"{str(lake).rstrip('/')}/{table}"
    if not DeltaTable.is_deltatable(path):
        return None
    delta = DeltaTable(path)
    types = {f.name: str(f.type) for f in delta.schema().fields}
    dataset = delta.to_pyarrow_dataset()
    rows = dataset.to_table(filter=pc.field(PARTITION) == pc.scalar(day)) if PARTITION in types else dataset.to_table()
    return types, rows


def _equal(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return (math.isnan(a) and math.isnan(b)) or math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-12)
    return a == b


def _sort_key(row: tuple) -> tuple:
    return tuple((v is None, repr(v)) for v in row)


def _quoted(column: str) -> str:
    return '"' + column.replace('"', '""') + '"'


def _logged_rows(lake: str, table: str, day: dt.date) -> Optional[int]:
    """Rows of the table's partition `day` per the Delta log, or None (unpartitioned, no statistics)."""
    from netflix_assets.lib.delta import partition_row_counts

    counts = partition_row_counts(f"{str(lake).rstrip('/')}/{table}")
    return None if counts is None else counts.get(day, 0)


def compare_table(lake_a: str, lake_b: str, table: str, day: Union[str, dt.date],
                  sample: int = 50, empty_equals_null: bool = False) -> list[Difference]:
    import duckdb

    day = _as_date(day)
    a, b = _load(lake_a, table, day), _load(lake_b, table, day)
    if a is None or b is None:
        missing = [name for name, side in (("a", a), ("b", b)) if side is None]
        return [Difference(table, "missing_table", f"no Delta table in lake {' and '.join(missing)}")]
    (types_a, rows_a), (types_b, rows_b) = a, b
    diffs: list[Difference] = []
    only_a = [c for c in types_a if c not in types_b and c not in IGNORED_COLUMNS]
    only_b = [c for c in types_b if c not in types_a and c not in IGNORED_COLUMNS]
    if only_a or only_b:
        diffs.append(Difference(table, "columns", f"only in a: {only_a}, only in b: {only_b}"))
    columns = [c for c in types_a if c in types_b and c not in IGNORED_COLUMNS]
    for c in columns:
        if types_a[c] != types_b[c]:
            diffs.append(Difference(table, "type", f"{types_a[c]} vs {types_b[c]}", column=c))

    # From the Delta log's file statistics where it can tell, else the Arrow table's length.
    count_a, count_b = (_logged_rows(lake, table, day) for lake in (lake_a, lake_b))
    count_a = rows_a.num_rows if count_a is None else count_a
    count_b = rows_b.num_rows if count_b is None else count_b
    if count_a != count_b:
        diffs.append(Difference(table, "row_count", f"{count_a} vs {count_b}", a=count_a, b=count_b))

    key = [c for c in TABLE_KEYS.get(table, ()) if c in columns] or columns
    # "" as null where asked (Spark's CSV reader cannot tell them apart), before the key is hashed.
    select = ", ".join(
        f"nullif({_quoted(c)}, '') AS {_quoted(c)}" if empty_equals_null and types_a[c] == 'PrimitiveType("string")'
        else _quoted(c)
        for c in columns
    )
    # The sample: the keys whose hash falls in one of `buckets` buckets, about `sample` keys. A
    # key's hash is the same in both lakes, so both sides yield the same keys.
    buckets = max(1, max(count_a, count_b) // max(1, sample))
    hashed = ", ".join(_quoted(c) for c in key)
    grouped: list[dict[tuple, list[tuple]]] = []
    con = duckdb.connect()
    try:
        for side in (rows_a, rows_b):
            con.register("side", side)
            picked = con.execute(f"SELECT * FROM (SELECT {select} FROM side) WHERE hash({hashed}) % {buckets} = 0").fetchall()
            con.unregister("side")
            rows: dict[tuple, list[tuple]] = {}
            for r in picked:
                rows.setdefault(tuple(r[columns.index(c)] for c in key), []).append(tuple(r))
            grouped.append(rows)
    finally:
        con.close()
    keys = set(grouped[0]) | set(grouped[1])
    for value in sorted(keys, key=_sort_key):
        side_a = sorted(grouped[0].get(value, []), key=_sort_key)
        side_b = sorted(grouped[1].get(value, []), key=_sort_key)
        if len(side_a) != len(side_b):
            diffs.append(Difference(table, "rows", f"{len(side_a)} vs {len(side_b)} rows", key=value,
                                    a=len(side_a), b=len(side_b)))
            continue
        for row_a, row_b in zip(side_a, side_b):
            for c, va, vb in zip(columns, row_a, row_b):
                if not _equal(va, vb):
                    diffs.append(Difference(table, "value", "", key=value, column=c, a=va, b=vb))
    return diffs


def compare_lakes(lake_a: str, lake_b: str, tables: Sequence[str], day: Union[str, dt.date],
                  sample: int = 50, empty_equals_null: bool = False) -> list[Difference]:
    """Differences between two lakes for partition `day`: per table, the row count, and a
    deterministic sample of about `sample` keys (one hash bucket of the key, the same
    keys in both lakes) whose rows are compared column by column on the columns both share, lineage and
    ingestion-time columns (`IGNORED_COLUMNS`) excepted. `empty_equals_null` treats "" as
    null in string columns (Spark's CSV reader cannot tell them apart; see the module doc).
    No Spark: delta-rs reads the tables, DuckDB picks the sample."""
    return [d_ for table in tables for d_ in compare_table(lake_a, lake_b, table, day, sample, empty_equals_null)]


# ------------------------------------------------------------------ CLI


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.baseline", description=__doc__.split("\n\n")[0])
    parser.add_argument("--titles", nargs="+", required=True, help="titles CSV file(s), tutorial or kaggle format")
    parser.add_argument("--lookups", required=True, help="directory holding netflix_{cast,category,countries,directors}.csv")
    parser.add_argument("--out", required=True, help="output lake root (<out>/<layer>/<table>)")
    parser.add_argument("--day", required=True, type=dt.date.fromisoformat, help="ingest_date partition, YYYY-MM-DD")
    args = parser.parse_args(argv)

    from netflix_assets.resources.spark import get_or_create_session

    start = time.perf_counter()
    spark = get_or_create_session()
    session_seconds = time.perf_counter() - start
    timings: dict[str, float] = {}
    start = time.perf_counter()
    rows = run_baseline(spark, args.titles, args.lookups, args.out, args.day, timings)
    wall = time.perf_counter() - start
    width = max(map(len, rows))
    for table, count in rows.items():
        print(f"{table:<{width}}  {count:>9,}  {timings[table]:7.2f} s")
    print(f"session start: {session_seconds:.1f} s")
    print(f"baseline wall time (session start excluded): {wall:.1f} s for {len(rows)} tables")
    # The last line: what `benchmarks.bench` reads.
    print(json.dumps({"run_s": wall, "session_s": session_seconds, "rows": rows}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
