"""Silver: typed, cleaned, deduplicated records; refused rows keep a `_reason`.

Each `classify_*` function returns every input row with `_reason` (null for
rows silver accepts); `accepted`/`refused` split that, so that bronze rows =
silver rows + quarantine rows, and duplicates land in quarantine too with
reason `duplicate`: nothing is lost without a count.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from .formats import Lookup

REASON = "_reason"
MALFORMED = "malformed_record"
MISSING_SHOW_ID = "missing_show_id"
BAD_TYPE = "bad_type"
EMPTY_VALUE = "empty_value"
DUPLICATE = "duplicate"

TYPES = {"Movie": 1, "TV Show": 2}
DATE_FORMATS = ("M/d/yyyy", "MMMM d, yyyy")

SILVER_TITLES_SCHEMA = T.StructType(
    [
        T.StructField("show_id", T.StringType(), False),
        T.StructField("type", T.StringType(), True),
        T.StructField("title", T.StringType(), True),
        T.StructField("short_title", T.StringType(), True),
        T.StructField("description", T.StringType(), True),
        T.StructField("date_added", T.DateType(), True),
        T.StructField("release_year", T.IntegerType(), True),
        T.StructField("rating", T.StringType(), True),
        T.StructField("rating_group", T.StringType(), True),
        T.StructField("duration_minutes", T.IntegerType(), False),
        T.StructField("duration_seasons", T.IntegerType(), False),
        T.StructField("type_flag", T.IntegerType(), False),
        T.StructField("_source_format", T.StringType(), True),
        T.StructField("_source_file", T.StringType(), True),
        T.StructField("_source_line", T.IntegerType(), True),
        T.StructField("_ingested_at", T.TimestampType(), True),
        T.StructField("ingest_date", T.DateType(), True),
    ]
)

# Latest record wins: latest _ingested_at, then latest _source_file, then highest _source_line.
LATEST_FIRST = ("_ingested_at", "_source_file", "_source_line")


def blank_to_null(col: Column) -> Column:
    trimmed = F.trim(col)
    return F.when(trimmed == "", None).otherwise(trimmed)


def parse_date_added(col: Column) -> Column:
    """'9/9/2019' (tutorial) or 'September 25, 2021' (Kaggle, often with a leading space)."""
    value = F.trim(col)
    return F.coalesce(*[F.try_to_date(value, fmt) for fmt in DATE_FORMATS])


def to_int(col: Column) -> Column:
    return blank_to_null(col).try_cast("int")


def _first_failure(*rules: tuple[Column, "str | Column"]) -> Column:
    expr = None
    for failed, reason in rules:
        expr = F.when(failed, reason) if expr is None else expr.when(failed, reason)
    return expr


def _mark_duplicates(df: DataFrame, key: list[Column]) -> DataFrame:
    """Among accepted rows, all but the latest record of each key become `duplicate`."""
    # Refused rows rank apart: an invalid record never supersedes a valid one.
    window = Window.partitionBy(*key, F.col(REASON).isNull()).orderBy(*[F.col(c).desc() for c in LATEST_FIRST])
    rank = F.when(F.col(REASON).isNull(), F.row_number().over(window))
    return df.withColumn(REASON, F.when(rank > 1, F.lit(DUPLICATE)).otherwise(F.col(REASON)))


def accepted(classified: DataFrame) -> DataFrame:
    return classified.where(F.col(REASON).isNull()).drop(REASON)


def refused(classified: DataFrame) -> DataFrame:
    return classified.where(F.col(REASON).isNotNull())


# ---------------------------------------------------------------- titles


def classify_titles(bronze: DataFrame) -> DataFrame:
    """Bronze titles (either format) + `_reason`; dedup on show_id within the input."""
    show_id = blank_to_null(F.col("show_id"))
    type_ = F.trim(F.col("type"))
    reason = _first_failure(
        (F.col("_rescued_data").isNotNull(), MALFORMED),
        (show_id.isNull(), MISSING_SHOW_ID),
        (type_.isNull() | ~type_.isin(*TYPES), BAD_TYPE),
    )
    df = bronze.withColumn(REASON, reason)
    # Within a partition the partition key is equal everywhere: ingest_date is
    # a partition column and keeps the window local to the day.
    return _mark_duplicates(df, [F.col("ingest_date"), show_id])


def _durations(df: DataFrame) -> tuple[Column, Column, Column]:
    """(rating, minutes, seasons) for both formats.

    Kaggle carries one `duration` text ("90 min", "2 Seasons"); three real rows
    hold it in `rating` instead, with `duration` empty: the contract moves it.
    """
    kaggle = F.col("_source_format") == "kaggle"
    rating = blank_to_null(F.col("rating"))
    rating_is_duration = kaggle & rating.rlike(r"^[0-9]+ min$")
    duration = F.coalesce(blank_to_null(F.col("duration")), F.when(rating_is_duration, rating))
    minutes = F.when(kaggle, to_int(F.regexp_extract(duration, r"^([0-9]+) min$", 1))).otherwise(
        to_int(F.col("duration_minutes"))
    )
    seasons = F.when(kaggle, to_int(F.regexp_extract(duration, r"^([0-9]+) Seasons?$", 1))).otherwise(
        to_int(F.col("duration_seasons"))
    )
    return F.when(rating_is_duration, None).otherwise(rating), minutes, seasons


def _ensure_columns(df: DataFrame, columns: list[str]) -> DataFrame:
    for column in columns:
        if column not in df.columns:
            df = df.withColumn(column, F.lit(None).cast("string"))
    return df


def silver_titles(classified: DataFrame) -> DataFrame:
    """Typed silver rows of the accepted titles, in the contract's columns."""
    df = _ensure_columns(accepted(classified), ["duration", "duration_minutes", "duration_seasons"])
    rating, minutes, seasons = _durations(df)
    type_ = F.trim(F.col("type"))
    title = F.trim(F.col("title"))
    out = df.select(
        F.trim("show_id").alias("show_id"),
        type_.alias("type"),
        title.alias("title"),
        F.trim(F.substring_index(title, ":", 1)).alias("short_title"),
        F.trim("description").alias("description"),
        parse_date_added(F.col("date_added")).alias("date_added"),
        to_int(F.col("release_year")).alias("release_year"),
        rating.alias("rating"),
        F.substring_index(rating, "-", 1).alias("rating_group"),
        F.coalesce(minutes, F.lit(0)).alias("duration_minutes"),
        F.coalesce(seasons, F.lit(1)).alias("duration_seasons"),
        F.coalesce(
            F.element_at(F.create_map(*[F.lit(x) for kv in TYPES.items() for x in kv]), type_), F.lit(0)
        ).alias("type_flag"),
        "_source_format",
        "_source_file",
        "_source_line",
        "_ingested_at",
        "ingest_date",
    )
    return out.select([F.col(f.name).cast(f.dataType) for f in SILVER_TITLES_SCHEMA.fields])


# ---------------------------------------------------------------- lookups


LOOKUP_LINEAGE = ["_source_format", "_source_file", "_source_line", "_rescued_data", "_ingested_at", "ingest_date"]


TITLE_REASON = "_title_reason"


def lookup_candidates(lookup: Lookup, bronze_lookup: DataFrame, bronze_titles: DataFrame) -> DataFrame:
    """(show_id, value) rows, raw: the pulled lookup file's rows plus one row per
    element of the Kaggle titles' list column. A blank list yields no rows (a
    title without cast); a blank element inside a list (stray comma) is kept for
    quarantine.

    A list row carries its title record's own verdict (`_title_reason`, silver titles'
    rule): the list of a record that a later one of the day replaced, or that silver
    refused, is not the title's list. Taking it would keep a cast member or a country
    the latest record dropped, beside the new ones, and the refused record's values as
    orphans."""
    from_file = bronze_lookup.select(
        F.col("show_id"), F.col(lookup.source_column).alias("value"), *LOOKUP_LINEAGE,
        F.lit(None).cast("string").alias(TITLE_REASON),
    )
    kaggle = classify_titles(bronze_titles).where(
        (F.col("_source_format") == "kaggle")
        & F.col("_rescued_data").isNull()
        & blank_to_null(F.col(lookup.kaggle_list_column)).isNotNull()
    )
    from_titles = kaggle.select(
        F.col("show_id"),
        F.explode(F.split(F.col(lookup.kaggle_list_column), ",")).alias("value"),
        *LOOKUP_LINEAGE,
        F.col(REASON).alias(TITLE_REASON),
    )
    return from_file.unionByName(from_titles)


def kaggle_list_lengths(lookup: Lookup, bronze_titles: DataFrame) -> DataFrame:
    """(`_source_file`, `n`): per Kaggle-format title, how many rows its `lookup` list yields in
    `lookup_candidates`, without exploding it (a list of n elements, blank ones included, explodes
    into n rows)."""
    listed = F.col(lookup.kaggle_list_column)
    kaggle = bronze_titles.where(
        (F.col("_source_format") == "kaggle") & F.col("_rescued_data").isNull() & blank_to_null(listed).isNotNull()
    )
    return kaggle.select("_source_file", F.size(F.split(listed, ",")).cast("long").alias("n"))


def kaggle_files_without_list(lookup: Lookup, bronze_titles: DataFrame) -> DataFrame:
    """(`_source_file`, `rows` = 1) per Kaggle titles file none of whose records has a `lookup` list. Such a
    file yields no candidate row, yet its records replace earlier ones of their title, whose lists
    then leave silver: a keyed refresh must take the file as new to touch its keys (`silver/assets.py`),
    every time, since no output row ever counts it (a cost of its keys only)."""
    listed = blank_to_null(F.col(lookup.kaggle_list_column)).isNotNull()
    kaggle = bronze_titles.where((F.col("_source_format") == "kaggle") & F.col("_rescued_data").isNull())
    return (kaggle.groupBy("_source_file").agg(F.max(listed.cast("int")).alias("listed"))
            .where(F.col("listed") == 0).select("_source_file", F.lit(1).cast("long").alias("rows")))


def lookup_candidate_counts(lookup: Lookup, bronze_lookup: DataFrame, bronze_titles: DataFrame) -> DataFrame:
    """(`_source_file`, `rows`): how many rows `lookup_candidates` yields per file: each row of the
    lookup file, and the Kaggle titles' lists (`kaggle_list_lengths`)."""
    from_file = bronze_lookup.select("_source_file", F.lit(1).cast("long").alias("n"))
    return from_file.unionByName(kaggle_list_lengths(lookup, bronze_titles)).groupBy("_source_file").agg(F.sum("n").alias("rows"))


def classify_lookup(candidates: DataFrame) -> DataFrame:
    show_id = blank_to_null(F.col("show_id"))
    value = blank_to_null(F.col("value"))
    reason = _first_failure(
        (F.col("_rescued_data").isNotNull(), MALFORMED),
        (show_id.isNull(), MISSING_SHOW_ID),
        (F.col(TITLE_REASON).isNotNull(), F.col(TITLE_REASON)),  # its title record's: `duplicate`, `bad_type`
        (value.isNull(), EMPTY_VALUE),
    )
    classified = candidates.withColumn(REASON, reason).drop(TITLE_REASON)
    return _mark_duplicates(classified, [F.col("ingest_date"), show_id, value])


def silver_lookup(lookup: Lookup, classified: DataFrame) -> DataFrame:
    return accepted(classified).select(
        F.trim("show_id").alias("show_id"),
        F.trim("value").alias(lookup.value_column),
        "_source_format",
        "_source_file",
        "_source_line",
        "_ingested_at",
        "ingest_date",
    )


def quarantine_lookup(lookup: Lookup, classified: DataFrame) -> DataFrame:
    return refused(classified).withColumnRenamed("value", lookup.value_column)
