"""Data-quality verdicts as plain PySpark: the rule and the rows that break it.

The asset checks (`lib/checks.py`) and the Databricks Pipes task
(`pipes/silver_titles_task.py`, which imports no Dagster) report the same rule with the
same words, so the rule lives here, not in either of them. A failed verdict names up to
`SAMPLE` offending rows; the names are looked up only once the counts have failed, so a
passing check pays nothing for them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping, Optional, Sequence

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

SAMPLE = 20  # offenders named in a failed check's description
LINEAGE = ("_source_file", "_source_line")  # how a row without a key is named


def offenders(df: DataFrame, columns: Sequence[str], limit: int = SAMPLE) -> list[str]:
    """Up to `limit` distinct values of `columns` in `df`, sorted, as text ("a" or "(a, b)")."""
    rows = df.select(*columns).distinct().orderBy(*columns).limit(limit).collect()
    return [str(r[0]) if len(columns) == 1 else "(" + ", ".join(str(v) for v in r) + ")" for r in rows]


def naming(what: str, names: Sequence[str], total: Optional[int] = None) -> str:
    """'3 duplicated keys: a, b, c' (with '... and N more' when `total` exceeds the names)."""
    total = len(names) if total is None else total
    more = f" ... and {total - len(names)} more" if total > len(names) else ""
    return f"{total} {what}: {', '.join(names)}{more}"


def key_check_name(columns: Sequence[str]) -> str:
    """The name of the check that `columns` are a key: `show_id_not_null_unique`."""
    return "_".join(columns) + "_not_null_unique"


@dataclass(frozen=True)
class KeyVerdict:
    rows: int
    null_keys: int
    duplicate_keys: int
    description: Optional[str]  # None when the key holds

    @property
    def passed(self) -> bool:
        return self.null_keys == 0 and self.duplicate_keys == 0


def key_verdict(df: DataFrame, columns: Sequence[str], key_hash: Callable[..., Column] = F.xxhash64) -> KeyVerdict:
    """The key columns are not null and unique in `df`.

    The rows are counted per 64-bit hash of the key rather than per key: at 1M titles, on the 5.7M
    rows of bridge_title_person (a three-string key) and the 5.1M of silver netflix_cast, the check
    took 3.5 s and 3.2 s against 4.2 s and 4.0 s grouping by the strings (`benchmarks/key_check.py`,
    medians of 3 alternated, 2 cores); a one-column key gains nothing. Two keys sharing a hash
    look like a duplicate there, so the keys themselves are grouped only when a hash repeats: the
    verdict is exact either way, and a passing check (no repeated hash) never pays for the exact
    pass."""
    null_any = F.lit(False)
    for column in columns:
        null_any = null_any | F.col(column).isNull()
    # One aggregation by hash, then a tiny one over the groups: a count_distinct beside other
    # aggregates makes Spark expand every row in two (an Expand before the shuffle).
    hashes = df.select(null_any.alias("_null_key"), key_hash(*columns).alias("_key_hash"))
    counts = hashes.groupBy("_null_key", "_key_hash").agg(F.count(F.lit(1)).alias("n"))
    row = _totals(counts, F.col("_null_key"))
    rows, nulls = int(row["rows"] or 0), int(row["nulls"] or 0)
    duplicates = rows - nulls - int(row["distinct"])
    groups = df.groupBy(*columns).agg(F.count(F.lit(1)).alias("n"))
    if duplicates:
        # A repeated hash: a duplicated key, or two keys that share a hash. Count by the key.
        row = _totals(groups, null_any)
        duplicates = rows - nulls - int(row["distinct"])
    parts = []
    if duplicates:
        repeated = groups.where(~null_any & (F.col("n") > 1))
        parts.append(naming("duplicated key(s)", offenders(repeated, columns), repeated.count()))
    if nulls:
        # A null key names nothing: name those rows by their lineage where the table keeps it.
        lineage = [c for c in LINEAGE if c in df.columns] or list(columns)
        parts.append(naming("row(s) with a null key", offenders(df.where(null_any), lineage), nulls))
    return KeyVerdict(rows, nulls, duplicates, "; ".join(parts) or None)


def key_number_column(columns: Sequence[str]) -> str:
    """The column a write adds (and drops) to number each key's rows: 1, 2, ... (`key_metrics`)."""
    return "_key_number__" + "__".join(columns)


def numbered(df: DataFrame, columns: Sequence[str]) -> DataFrame:
    """`df` with `key_number_column(columns)`: each row's number among the rows of its key."""
    order = Window.partitionBy(*columns).orderBy(F.lit(1))  # any order: only "> 1" is counted
    return df.withColumn(key_number_column(columns), F.row_number().over(order))


def key_metrics(columns: Sequence[str]) -> dict[str, str]:
    """`key_verdict`'s counts as SQL aggregates over `numbered(df, columns)`, so that the write of
    the rows can observe them (`lib.delta.observe`): an observation refuses a distinct count, but
    counting the rows numbered past 1 within their key is the same number of surplus rows."""
    null_any = " OR ".join(f"`{c}` IS NULL" for c in columns)
    number = key_number_column(columns)
    return {
        "rows": "count(1)",
        "null_keys": f"count(CASE WHEN {null_any} THEN 1 END)",
        "duplicate_keys": f"count(CASE WHEN NOT ({null_any}) AND `{number}` > 1 THEN 1 END)",
    }


def _totals(groups: DataFrame, null_key: Column):
    """Over (..., n) groups: all rows, rows with a null key, groups without one."""
    return groups.agg(
        F.sum("n").alias("rows"),
        F.sum(F.when(null_key, F.col("n"))).alias("nulls"),
        F.count(F.when(~null_key, 1)).alias("distinct"),
    ).first()


# A metric the write of part of a partition observes beside its table's: its rows outside the
# predicate of the rows it replaces. 0, or the partition's values cannot be derived.
OUTSIDE_REPLACED = "_outside_replaced"


def outside_metric(predicate: str) -> str:
    """The SQL aggregate of `OUTSIDE_REPLACED`: written rows `predicate` does not select."""
    return f"count_if(NOT coalesce(({predicate}), false))"


def _one_count(sql: str) -> bool:
    """Whether lower-cased `sql` is one `count(...)` or `count_if(...)` call and nothing else: its first
    parenthesis closes at the end (`count(a) - count(b)` is not a count of rows), quoted text skipped."""
    if not sql.startswith(("count(", "count_if(")):
        return False
    depth, quote = 0, ""
    for i, char in enumerate(sql):
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"`":
            quote = char
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth == 0:
                return i == len(sql) - 1
    return False


def replaced_partition_metrics(
    metrics: Mapping[str, str],
    previous: Optional[Mapping[str, Any]],
    written: Mapping[str, Any],
    partition_rows: Optional[int],
    disjoint_keys: Sequence[Sequence[str]] = (),
) -> dict[str, Any]:
    """The partition's values of `metrics` (name -> SQL aggregate) after a commit that deleted its
    rows matching a predicate P and wrote rows all matching P, from what that write observed
    (`written`, with `OUTSIDE_REPLACED`) and the partition's values at the commit just before
    (`previous`); the metrics it cannot derive are left out (their checks query the table).

    The partition is now the rows P did not select (kept: a subset of the previous rows) plus the
    written ones. So a count of rows (`count(...)`/`count_if(...)`) that was 0 before is 0 over
    the kept rows, and the partition's is the written rows': the checks whose rule is "no such
    row" (null or duplicate keys, disallowed values) are evaluated by induction from the last
    verdict, scoped to what the write changed. A count numbering rows within a key (duplicates)
    also needs kept and written rows never to share a key: `disjoint_keys` are the keys that hold
    the column P selects by. `count(1)` is the partition's rows, from the Delta log
    (`partition_rows`). Any other value (a count that was not 0, a sum, a maximum) is unknown
    without the rows the commit deleted."""
    if previous is None or written.get(OUTSIDE_REPLACED) != 0:
        return {}
    numbered = [f"`{key_number_column(columns)}`" for columns in disjoint_keys]  # as `key_metrics` quotes them
    derived: dict[str, Any] = {}
    for name, sql in metrics.items():
        text = sql.strip().lower()
        if text == "count(1)":
            if partition_rows is not None:
                derived[name] = partition_rows
            continue
        if not _one_count(text) or name not in written or previous.get(name) != 0:
            continue
        if "`_key_number__" in sql and not any(column in sql for column in numbered):
            continue  # kept and written rows may share a key
        derived[name] = written[name]
    return derived
