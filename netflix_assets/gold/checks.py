"""Gold checks of the data contract."""


import datetime as dt
from typing import Any, Mapping

import dagster as dg
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from ..lib.checks import TableReader, aggregate_check, key_check, naming, offenders, partition_check, row_count_drop_check
from ..lib.delta import PARTITION_COLUMN
from ..transforms.formats import LOOKUPS

TITLES = ("gold", "netflix_titles")


@partition_check(
    TITLES,
    "parity_expectations",
    "DLT parity: newflag and show_id not null; every show_id of silver <= D is served or dropped with a reason.",
    blocking=True,
    additional_deps=[("silver", "netflix_titles"), ("quarantine", "gold_netflix_titles")],
)
def gold_titles_parity(df: DataFrame, day: dt.date, reader: TableReader) -> dg.AssetCheckResult:
    silver = reader.table(("silver", "netflix_titles")).where(F.col(PARTITION_COLUMN) <= F.lit(day)).select("show_id")
    # Gold's and silver's figures in one query (a Spark action costs ~0.2 s however small the
    # tables). silver's distinct show_ids as `distinct().count()` counts them: a null is one.
    row = df.agg(
        F.count(F.lit(1)).alias("rows"),
        F.sum((F.col("show_id").isNull() | F.col("newflag").isNull()).cast("int")).alias("violations"),
    ).crossJoin(silver.agg(
        (F.count_distinct("show_id") + F.coalesce(F.max(F.col("show_id").isNull().cast("int")), F.lit(0))).alias("expected")
    )).first()
    dropped = reader.partition_rows(("quarantine", "gold_netflix_titles"), day)
    expected = row["expected"]
    violations = row["violations"] or 0
    passed = violations == 0 and row["rows"] + dropped == expected
    return dg.AssetCheckResult(
        passed=passed,
        metadata={"rows": row["rows"], "violations": violations, "dropped": dropped, "silver_show_ids": expected},
        description=None if passed else _parity_offenders(df, silver, reader, day, violations),
    )


def _parity_offenders(gold: DataFrame, silver: DataFrame, reader: TableReader, day: dt.date, violations: int) -> str:
    """Which show_ids break parity: served with a null expectation column, or in silver and
    neither served nor dropped, or served and not in silver."""
    parts = []
    if violations:
        bad = gold.where(F.col("show_id").isNull() | F.col("newflag").isNull())
        parts.append(naming("served row(s) with a null show_id or newflag (show_id, newflag)",
                            offenders(bad, ["show_id", "newflag"]), violations))
    served = gold.select("show_id")
    dropped = reader.partition_or_none(("quarantine", "gold_netflix_titles"), day)
    accounted = served if dropped is None else served.unionByName(dropped.select("show_id"))
    lost = silver.distinct().join(accounted, "show_id", "left_anti")
    extra = served.where(F.col("show_id").isNotNull()).join(silver, "show_id", "left_anti")
    if lost_names := offenders(lost, ["show_id"]):
        parts.append(naming("silver show_id(s) neither served nor dropped", lost_names, lost.distinct().count()))
    if extra_names := offenders(extra, ["show_id"]):
        parts.append(naming("served show_id(s) not in silver", extra_names, extra.distinct().count()))
    return "; ".join(parts) or "served + dropped rows differ from silver's show_ids (a show_id served twice)"


@partition_check(TITLES, "duration_ranking_dense",
                 "duration_ranking is the dense rank of duration_minutes, descending: 1 for the longest.", blocking=True)
def duration_ranking_dense(df: DataFrame, day: dt.date, reader: TableReader) -> dg.AssetCheckResult:
    # Distinct (duration, rank) pairs are a few hundred at most: the rule is checked on the driver.
    pairs = df.select("duration_minutes", "duration_ranking").distinct().collect()
    durations = sorted({p["duration_minutes"] for p in pairs if p["duration_minutes"] is not None}, reverse=True)
    rank = {d: i for i, d in enumerate(durations, start=1)}
    wrong = sorted(
        ((p["duration_minutes"], p["duration_ranking"]) for p in pairs
         if p["duration_minutes"] is None or p["duration_ranking"] != rank[p["duration_minutes"]]),
        key=str,
    )
    return dg.AssetCheckResult(
        passed=not wrong,
        metadata={"max_rank": max((p["duration_ranking"] or 0 for p in pairs), default=0),
                  "distinct_durations": len(durations)},
        description=naming(
            "(duration_minutes, duration_ranking) pair(s) off the dense descending rank",
            [f"({d}, {r}: expected {rank.get(d)})" for d, r in wrong[:20]], len(wrong),
        ) if wrong else None,
    )


checks = [key_check(TITLES, ["show_id"]), gold_titles_parity, duration_ranking_dense, row_count_drop_check(TITLES)]
for _lookup in LOOKUPS.values():
    _key = ("gold", _lookup.table)

    def _not_null(key=_key, value=_lookup.value_column):
        @aggregate_check(key, "show_id_not_null", "Expectation: show_id not null.", {"nulls": "count_if(show_id IS NULL)"},
                         blocking=True)
        def _body(values: Mapping[str, Any], df: DataFrame, day: dt.date, reader: TableReader) -> dg.AssetCheckResult:
            rows = df.where(F.col("show_id").isNull())
            nulls = values["nulls"] or 0
            named = [c for c in ("_source_file", value) if c in df.columns]
            return dg.AssetCheckResult(
                passed=nulls == 0, metadata={"null_show_ids": nulls},
                description=naming(f"row(s) without a show_id ({', '.join(named)})", offenders(rows, named), nulls)
                if nulls else None,
            )

        return _body

    checks += [_not_null(), row_count_drop_check(_key)]
