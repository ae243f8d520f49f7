"""Silver checks of the data contract."""


import datetime as dt

import dagster as dg
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from ..lib.checks import PartitionCheck, TableReader, key_check, partition_check, row_count_drop_check
from ..transforms import silver as t

TITLES = ("silver", "netflix_titles")
MAX_NULL_DATE_ADDED_SHARE = 0.02


def _reasons(quarantine: DataFrame) -> dict[str, int]:
    return {r["_reason"]: r["count"] for r in quarantine.groupBy("_reason").count().collect()}


def _reconciliation(table: str, input_rows) -> PartitionCheck:
    @partition_check(
        ("silver", table),
        "reconciliation",
        "Input rows = silver rows + quarantined rows (duplicates are quarantined with reason `duplicate`).",
        blocking=True,
        additional_deps=[("quarantine", table)],
    )
    def _body(silver: DataFrame, day: dt.date, reader: TableReader) -> dg.AssetCheckResult:
        quarantine = reader.partition_or_none(("quarantine", table), day)
        if quarantine is None:
            return dg.AssetCheckResult(
                passed=False,
                description=f"quarantine/{table} has never been written: materialize it with silver/{table}.",
            )
        expected = input_rows(reader, day)
        silver_rows = reader.partition_rows(("silver", table), day)
        reasons = _reasons(quarantine)
        quarantined = sum(reasons.values())
        return dg.AssetCheckResult(
            passed=expected == silver_rows + quarantined,
            metadata={
                "input_rows": expected,
                "silver_rows": silver_rows,
                "quarantined_rows": quarantined - reasons.get(t.DUPLICATE, 0),
                "duplicates_removed": reasons.get(t.DUPLICATE, 0),
                "quarantine_reasons": dg.MetadataValue.json(reasons),
            },
        )

    return _body


def _titles_input(reader: TableReader, day: dt.date) -> int:
    return reader.partition_rows(("bronze", "netflix_titles"), day)


def _lookup_input(lookup: t.Lookup):
    def rows(reader: TableReader, day: dt.date) -> int:
        return t.lookup_candidate_count(
            lookup,
            reader.partition(("bronze", lookup.table), day),
            reader.partition(("bronze", "netflix_titles"), day),
        ).first()["rows"]

    return rows


@partition_check(TITLES, "type_allowed", f"type is one of {sorted(t.TYPES)} (warning).")
def type_allowed(df: DataFrame, day: dt.date, reader: TableReader) -> dg.AssetCheckResult:
    bad = df.where(~F.col("type").isin(*t.TYPES)).count()
    return dg.AssetCheckResult(passed=bad == 0, severity=dg.AssetCheckSeverity.WARN, metadata={"bad_rows": bad})


@partition_check(TITLES, "release_year_in_range", "release_year within [1925, year(D)+1] (warning).")
def release_year_in_range(df: DataFrame, day: dt.date, reader: TableReader) -> dg.AssetCheckResult:
    out = df.where(F.col("release_year").isNull() | ~F.col("release_year").between(1925, day.year + 1)).count()
    return dg.AssetCheckResult(passed=out == 0, severity=dg.AssetCheckSeverity.WARN, metadata={"rows_out_of_range": out})


@partition_check(TITLES, "date_added_null_share", f"Share of null date_added <= {MAX_NULL_DATE_ADDED_SHARE:.0%} (warning).")
def date_added_null_share(df: DataFrame, day: dt.date, reader: TableReader) -> dg.AssetCheckResult:
    row = df.agg(F.count(F.lit(1)).alias("rows"), F.sum(F.col("date_added").isNull().cast("int")).alias("nulls")).first()
    rows, nulls = row["rows"], row["nulls"] or 0
    share = nulls / rows if rows else 0.0
    return dg.AssetCheckResult(
        passed=share <= MAX_NULL_DATE_ADDED_SHARE,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={"rows": rows, "null_date_added": nulls, "share": share},
    )


checks = [
    key_check(TITLES, ["show_id"]),
    _reconciliation("netflix_titles", _titles_input),
    type_allowed,
    release_year_in_range,
    date_added_null_share,
    row_count_drop_check(TITLES),
]
for _lookup in t.LOOKUPS.values():
    checks += [
        key_check(("silver", _lookup.table), ["show_id", _lookup.value_column]),
        _reconciliation(_lookup.table, _lookup_input(_lookup)),
        row_count_drop_check(("silver", _lookup.table)),
    ]
