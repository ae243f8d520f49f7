"""Gold checks of the data contract."""


import datetime as dt

import dagster as dg
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from ..lib.checks import TableReader, key_check, partition_check, row_count_drop_check
from ..partitions import PARTITION_COLUMN
from ..transforms.silver import LOOKUPS

TITLES = ("gold", "netflix_titles")


@partition_check(
    TITLES,
    "parity_expectations",
    "DLT parity: newflag and show_id not null; every show_id of silver <= D is served or dropped with a reason.",
    blocking=True,
    additional_deps=[("silver", "netflix_titles"), ("quarantine", "gold_netflix_titles")],
)
def gold_titles_parity(df: DataFrame, day: dt.date, reader: TableReader) -> dg.AssetCheckResult:
    row = df.agg(
        F.count(F.lit(1)).alias("rows"),
        F.sum((F.col("show_id").isNull() | F.col("newflag").isNull()).cast("int")).alias("violations"),
    ).first()
    dropped = reader.partition_rows(("quarantine", "gold_netflix_titles"), day)
    expected = (
        reader.table(("silver", "netflix_titles"))
        .where(F.col(PARTITION_COLUMN) <= F.lit(day))
        .select("show_id")
        .distinct()
        .count()
    )
    violations = row["violations"] or 0
    return dg.AssetCheckResult(
        passed=violations == 0 and row["rows"] + dropped == expected,
        metadata={"rows": row["rows"], "violations": violations, "dropped": dropped, "silver_show_ids": expected},
    )


@partition_check(TITLES, "duration_ranking_dense", "duration_ranking is a dense rank starting at 1.", blocking=True)
def duration_ranking_dense(df: DataFrame, day: dt.date, reader: TableReader) -> dg.AssetCheckResult:
    row = df.agg(
        F.min("duration_ranking").alias("lo"),
        F.max("duration_ranking").alias("hi"),
        F.count_distinct("duration_minutes").alias("durations"),
    ).first()
    passed = row["hi"] is None or (row["lo"] == 1 and row["hi"] == row["durations"])
    return dg.AssetCheckResult(passed=passed, metadata={"max_rank": row["hi"] or 0, "distinct_durations": row["durations"]})


checks = [key_check(TITLES, ["show_id"]), gold_titles_parity, duration_ranking_dense, row_count_drop_check(TITLES)]
for _lookup in LOOKUPS.values():
    _key = ("gold", _lookup.table)

    def _not_null(key=_key):
        @partition_check(key, "show_id_not_null", "Expectation: show_id not null.", blocking=True)
        def _body(df: DataFrame, day: dt.date, reader: TableReader) -> dg.AssetCheckResult:
            nulls = df.where(F.col("show_id").isNull()).count()
            return dg.AssetCheckResult(passed=nulls == 0, metadata={"null_show_ids": nulls})

        return _body

    checks += [_not_null(), row_count_drop_check(_key)]
