"""Silver checks of the data contract."""


import datetime as dt
from typing import Any, Callable, Mapping

import dagster as dg
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from ..lib.checks import (
    PartitionCheck, TableReader, aggregate_check, key_check, naming, offenders, partition_check, row_count_drop_check,
)
from ..lib.refresh import file_rows
from ..transforms.formats import LOOKUPS, Lookup
from ..transforms import silver as t

TITLES = ("silver", "netflix_titles")
MAX_NULL_DATE_ADDED_SHARE = 0.02


def _reasons(quarantine: DataFrame) -> dict[str, int]:
    return {r["_reason"]: r["count"] for r in quarantine.groupBy("_reason").count().collect()}


def _reconciliation(table: str, input_rows: "InputRows", input_files: "InputFiles") -> PartitionCheck:
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
        passed = expected == silver_rows + quarantined
        return dg.AssetCheckResult(
            passed=passed,
            metadata={
                "input_rows": expected,
                "silver_rows": silver_rows,
                "quarantined_rows": quarantined - reasons.get(t.DUPLICATE, 0),
                "duplicates_removed": reasons.get(t.DUPLICATE, 0),
                "quarantine_reasons": dg.MetadataValue.json(reasons),
            },
            description=None if passed else _unreconciled_files(
                input_files(reader, day), [silver, quarantine], expected, silver_rows + quarantined
            ),
        )

    return _body


def _unreconciled_files(inputs: DataFrame, outputs: list[DataFrame], expected: int, got: int) -> str:
    """The source files whose input rows differ from their silver + quarantine rows."""
    outs = file_rows(outputs).withColumnRenamed("rows", "out")
    diff = (
        inputs.withColumnRenamed("rows", "in").join(outs, "_source_file", "full_outer")
        .select("_source_file", F.coalesce("in", F.lit(0)).alias("input"), F.coalesce("out", F.lit(0)).alias("output"))
        .where(F.col("input") != F.col("output"))
    )
    files = offenders(diff, ["_source_file", "input", "output"])
    return f"{expected} input rows against {got} silver + quarantined rows; " + naming(
        "file(s) whose (file, input rows, silver + quarantined rows) differ", files, diff.count()
    )


InputRows = Callable[[TableReader, dt.date], int]  # the check's input rows
InputFiles = Callable[[TableReader, dt.date], DataFrame]  # the same, per file: (_source_file, rows)


def _titles_input(reader: TableReader, day: dt.date) -> int:
    return reader.partition_rows(("bronze", "netflix_titles"), day)  # from the Delta log: no Spark job


def _titles_input_files(reader: TableReader, day: dt.date) -> DataFrame:
    return file_rows([reader.partition(("bronze", "netflix_titles"), day)])


def _lookup_input_files(lookup: Lookup) -> InputFiles:
    def files(reader: TableReader, day: dt.date) -> DataFrame:
        return t.lookup_candidate_counts(
            lookup,
            reader.partition(("bronze", lookup.table), day),
            reader.partition(("bronze", "netflix_titles"), day),
        )

    return files


def _lookup_input(lookup: Lookup) -> InputRows:
    def rows(reader: TableReader, day: dt.date) -> int:
        # The lookup file's rows from the Delta log; only the Kaggle titles' lists need a query.
        # At 1M titles the count took 0.89 s for netflix_cast and 0.30-0.34 s for the other three,
        # against 1.16 s and 0.55-0.62 s reading the bronze lookup too (same totals, medians of 3).
        titles = reader.partition(("bronze", "netflix_titles"), day)
        listed = t.kaggle_list_lengths(lookup, titles).agg(F.coalesce(F.sum("n"), F.lit(0)).cast("long")).first()[0]
        return reader.partition_rows(("bronze", lookup.table), day) + listed

    return rows


_TYPES_SQL = ", ".join(f"'{v}'" for v in sorted(t.TYPES))


@aggregate_check(TITLES, "type_allowed", f"type is one of {sorted(t.TYPES)} (warning).",
                 {"bad_rows": f"count_if(coalesce(type NOT IN ({_TYPES_SQL}), true))"})
def type_allowed(values: Mapping[str, Any], df: DataFrame, day: dt.date, reader: TableReader) -> dg.AssetCheckResult:
    bad = values["bad_rows"] or 0
    return dg.AssetCheckResult(
        passed=bad == 0, severity=dg.AssetCheckSeverity.WARN, metadata={"bad_rows": bad},
        description=naming("title(s) of another type (show_id, type)", offenders(
            df.where(~F.coalesce(F.col("type").isin(*t.TYPES), F.lit(False))), ["show_id", "type"]), bad)
        if bad else None,
    )


@aggregate_check(TITLES, "release_year_in_range", "release_year within [1925, year(D)+1] (warning).",
                 {"rows_out_of_range": "count_if(coalesce(release_year NOT BETWEEN 1925 AND year(ingest_date) + 1, true))"})
def release_year_in_range(values: Mapping[str, Any], df: DataFrame, day: dt.date, reader: TableReader) -> dg.AssetCheckResult:
    out = values["rows_out_of_range"] or 0
    rows = df.where(F.col("release_year").isNull() | ~F.col("release_year").between(1925, day.year + 1))
    return dg.AssetCheckResult(
        passed=out == 0, severity=dg.AssetCheckSeverity.WARN, metadata={"rows_out_of_range": out},
        description=naming(f"title(s) released outside [1925, {day.year + 1}] (show_id, release_year)",
                           offenders(rows, ["show_id", "release_year"]), out) if out else None,
    )


@aggregate_check(TITLES, "date_added_null_share", f"Share of null date_added <= {MAX_NULL_DATE_ADDED_SHARE:.0%} (warning).",
                 {"rows": "count(1)", "nulls": "count_if(date_added IS NULL)"})
def date_added_null_share(values: Mapping[str, Any], df: DataFrame, day: dt.date, reader: TableReader) -> dg.AssetCheckResult:
    rows, nulls = values["rows"] or 0, values["nulls"] or 0
    share = nulls / rows if rows else 0.0
    passed = share <= MAX_NULL_DATE_ADDED_SHARE
    return dg.AssetCheckResult(
        passed=passed,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={"rows": rows, "null_date_added": nulls, "share": share},
        description=None if passed else (
            f"{share:.1%} of the titles have no date_added (at most {MAX_NULL_DATE_ADDED_SHARE:.0%}); "
            + naming("show_id(s) without one", offenders(df.where(F.col("date_added").isNull()), ["show_id"]), nulls)
        ),
    )


# Netflix's catalog (streaming) began in January 2007; the real files start in 2008. An earlier
# date_added is a typo ("9/9/1019"): it would stretch dim_date to that year and open a KPI bucket.
FIRST_DATE_ADDED = dt.date(2007, 1, 1)


@aggregate_check(TITLES, "date_added_in_range", f"date_added within [{FIRST_DATE_ADDED}, D+1] when present (warning).",
                 {"rows_out_of_range": "count_if(date_added NOT BETWEEN DATE'"
                  f"{FIRST_DATE_ADDED}' AND date_add(ingest_date, 1))"})
def date_added_in_range(values: Mapping[str, Any], df: DataFrame, day: dt.date, reader: TableReader) -> dg.AssetCheckResult:
    out = values["rows_out_of_range"] or 0
    last = day + dt.timedelta(days=1)
    rows = df.where(~F.col("date_added").between(F.lit(FIRST_DATE_ADDED), F.lit(last)))
    return dg.AssetCheckResult(
        passed=out == 0, severity=dg.AssetCheckSeverity.WARN, metadata={"rows_out_of_range": out},
        description=naming(f"title(s) added outside [{FIRST_DATE_ADDED}, {last}] (show_id, date_added)",
                           offenders(rows, ["show_id", "date_added"]), out) if out else None,
    )


@aggregate_check(TITLES, "movie_minutes_known", "Every movie has its minutes (warning): a blank or unreadable "
                 "duration is stored as 0 (the original rule), and the minutes KPI leaves such movies out.",
                 {"movies_without_minutes": "count_if(type = 'Movie' AND duration_minutes = 0)"})
def movie_minutes_known(values: Mapping[str, Any], df: DataFrame, day: dt.date, reader: TableReader) -> dg.AssetCheckResult:
    out = values["movies_without_minutes"] or 0
    rows = df.where((F.col("type") == "Movie") & (F.col("duration_minutes") == 0))
    return dg.AssetCheckResult(
        passed=out == 0, severity=dg.AssetCheckSeverity.WARN, metadata={"movies_without_minutes": out},
        description=naming("movie(s) whose duration was blank or unreadable (show_id)", offenders(rows, ["show_id"]), out)
        if out else None,
    )


checks = [
    key_check(TITLES, ["show_id"]),
    _reconciliation("netflix_titles", _titles_input, _titles_input_files),
    type_allowed,
    release_year_in_range,
    date_added_null_share,
    date_added_in_range,
    movie_minutes_known,
    row_count_drop_check(TITLES),
]
for _lookup in LOOKUPS.values():
    checks += [
        key_check(("silver", _lookup.table), ["show_id", _lookup.value_column]),
        _reconciliation(_lookup.table, _lookup_input(_lookup), _lookup_input_files(_lookup)),
        row_count_drop_check(("silver", _lookup.table)),
    ]
