"""Checks of the title identity, the dimensional model and KPIs (data contract: a show_id has
one title_key and a title_key one type (blocking); no cross-source candidate left for review
(warning); dim_title key unique (blocking); every bridge show_id exists in dim_title (warning);
KPI totals reconcile with fact_title_added (blocking); row count drop (warning); the title history's
versions ordered and its current rows equal to dim_title (blocking))."""


import datetime as dt
from typing import Callable, Sequence

import dagster as dg
from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from ..lib.checks import PartitionCheck, TableReader, key_check, naming, offenders, partition_check, row_count_drop_check
from ..transforms import history as h
from ..transforms import kpis as k
from .model import CATEGORY, COUNTRIES, DIM_TITLE, FACT, HISTORY, IDS, REVIEW, gold_title_identity, kpi_assets, model_assets

BRIDGES = {
    "bridge_title_person": ("gold", "bridge_title_person"),
    "bridge_title_country": ("gold", "bridge_title_country"),
    "bridge_title_genre": ("gold", "bridge_title_genre"),
}
ORPHAN_SAMPLE = 20


def bridge_integrity(bridge: Sequence[str]) -> PartitionCheck:
    @partition_check(
        bridge, "show_id_in_dim_title",
        "Every show_id of the bridge exists in dim_title (warning: lookups may name titles that never loaded).",
        additional_deps=[DIM_TITLE],
    )
    def _body(df: DataFrame, day: dt.date, reader: TableReader) -> dg.AssetCheckResult:
        titles = reader.partition(DIM_TITLE, day).select("show_id")
        orphans = df.select("show_id").distinct().join(titles, "show_id", "left_anti")
        sample = sorted(r["show_id"] for r in orphans.limit(ORPHAN_SAMPLE).collect())
        count = orphans.count() if len(sample) == ORPHAN_SAMPLE else len(sample)
        return dg.AssetCheckResult(
            passed=count == 0,
            severity=dg.AssetCheckSeverity.WARN,
            metadata={"orphan_show_ids": count, "sample": dg.MetadataValue.json(sample)},
            description=naming("show_id(s) not in dim_title", sample, count) if count else None,
        )

    return _body


@partition_check(FACT, "matches_dim_title", "fact_title_added has exactly the show_ids of dim_title.", blocking=True,
                 additional_deps=[DIM_TITLE])
def fact_matches_dim_title(df: DataFrame, day: dt.date, reader: TableReader) -> dg.AssetCheckResult:
    titles = reader.partition(DIM_TITLE, day).select("show_id", F.lit(True).alias("in_dim"))
    facts = df.select("show_id", F.lit(True).alias("in_fact"))
    # One full outer join answers both sides (two anti joins would shuffle both tables twice).
    row = titles.join(facts, "show_id", "full_outer").agg(
        F.count(F.when(F.col("in_fact").isNull(), 1)).alias("missing"),
        F.count(F.when(F.col("in_dim").isNull(), 1)).alias("extra"),
    ).first()
    missing, extra = row["missing"], row["extra"]
    parts = []
    if missing:
        lost = titles.join(facts, "show_id", "left_anti")
        parts.append(naming("dim_title show_id(s) missing from the fact", offenders(lost, ["show_id"]), missing))
    if extra:
        more = facts.join(titles, "show_id", "left_anti")
        parts.append(naming("fact show_id(s) not in dim_title", offenders(more, ["show_id"]), extra))
    return dg.AssetCheckResult(
        passed=missing == extra == 0, metadata={"missing": missing, "extra": extra}, description="; ".join(parts) or None
    )


@partition_check(IDS, "one_type_per_title_key", "No title_key groups titles of different types (a Movie and a "
                 "TV Show are never one title).", blocking=True)
def one_type_per_title_key(df: DataFrame, day: dt.date, reader: TableReader) -> dg.AssetCheckResult:
    mixed = df.groupBy("title_key").agg(F.count_distinct("type").alias("types")).where(F.col("types") > 1)
    sample = offenders(df.join(mixed, "title_key", "left_semi"), ["title_key", "show_id", "type"])
    count = mixed.count() if sample else 0
    return dg.AssetCheckResult(
        passed=count == 0, metadata={"mixed_title_keys": count},
        description=naming("title_key(s) over several types (title_key, show_id, type)", sample, count) if count else None,
    )


@partition_check(REVIEW, "no_unmerged_duplicates", "No probable cross-source duplicate is waiting for review "
                 "(warning: such titles count once per source until a person decides).")
def no_unmerged_duplicates(df: DataFrame, day: dt.date, reader: TableReader) -> dg.AssetCheckResult:
    count = df.count()
    sample = offenders(df, ["show_id", "candidate_show_id", "title", "reason"]) if count else []
    return dg.AssetCheckResult(
        passed=count == 0, severity=dg.AssetCheckSeverity.WARN, metadata={"pairs": count},
        description=naming("candidate pair(s) left unmerged (show_id, candidate, title, reason)", sample, count)
        if count else None,
    )


@partition_check(HISTORY, "versions_ordered", "Each title's versions follow one another: valid_from < valid_to, "
                 "a version starts no earlier than the previous one ends, and only the last one is current.",
                 blocking=True)
def history_versions_ordered(df: DataFrame, day: dt.date, reader: TableReader) -> dg.AssetCheckResult:
    by_title = Window.partitionBy("title_key").orderBy("valid_from")
    ordered = df.select("title_key", "valid_from", "valid_to", "is_current",
                        F.lag("valid_to").over(by_title).alias("_previous_to"),
                        F.lead("valid_from").over(by_title).alias("_next_from"))
    broken = ordered.where(
        (F.col("valid_to") <= F.col("valid_from")) | (F.col("valid_from") < F.col("_previous_to"))
        | (F.col("valid_to").isNull() & F.col("_next_from").isNotNull())
        | (F.col("is_current") != F.col("valid_to").isNull()))
    sample = offenders(broken, ["title_key", "valid_from"])
    count = broken.count() if sample else 0
    return dg.AssetCheckResult(
        passed=count == 0, metadata={"versions_out_of_order": count},
        description=naming("version(s) overlapping, reversed or wrongly current (title_key, valid_from)", sample, count)
        if count else None,
    )


@partition_check(HISTORY, "current_rows_equal_dim_title", "The current versions are dim_title's rows of D "
                 "(title_key and every tracked attribute, the countries and genres of the gold lookups of D "
                 "included).", blocking=True, additional_deps=[DIM_TITLE, COUNTRIES, CATEGORY])
def history_current_equals_dim_title(df: DataFrame, day: dt.date, reader: TableReader) -> dg.AssetCheckResult:
    tracked = F.struct(*h.TRACKED)
    current = df.where(F.col("is_current")).select("title_key", tracked.alias("_history"))
    # D's state built as the history builds a version (`title_versions`), from the tables of D alone.
    titles = h.title_versions(*(reader.partition(key, day) for key in (DIM_TITLE, COUNTRIES, CATEGORY))).select(
        "title_key", tracked.alias("_dim"))
    # One full outer join by title_key answers both sides (each side's key is unique: blocking
    # checks of its own); two exceptAll would shuffle both tables twice even when they agree.
    differ = ~F.col("_history").eqNullSafe(F.col("_dim"))
    joined = current.join(titles, "title_key", "full_outer")
    stale, missing = (joined.where(differ & F.col(side).isNotNull()).select("title_key", F.col(f"{side}.show_id"))
                      for side in ("_history", "_dim"))
    row = joined.agg(*[F.count(F.when(differ & F.col(side).isNotNull(), 1)).alias(side)
                       for side in ("_history", "_dim")]).first()
    parts = [naming(f"{label} (title_key, show_id)", offenders(rows, ["title_key", "show_id"]), n)
             for label, rows, n in (("current version(s) not in dim_title", stale, row["_history"]),
                                    ("dim_title row(s) without a current version", missing, row["_dim"])) if n]
    return dg.AssetCheckResult(passed=not parts, metadata={"stale_current_versions": row["_history"],
                                                           "dim_title_rows_unmatched": row["_dim"]},
                               description="; ".join(parts) or None)


Expected = Callable[[TableReader, dt.date], DataFrame]


def _pairs(bridge: Sequence[str], key: str, fact_filter: Callable[[DataFrame], DataFrame] = lambda f: f) -> Expected:
    """Distinct (show_id, key) bridge pairs of titles in the (filtered) fact."""
    def expected(reader: TableReader, day: dt.date) -> DataFrame:
        fact = fact_filter(reader.partition(FACT, day)).select("show_id")
        return reader.partition(bridge, day).join(fact, "show_id").select("show_id", key).distinct()

    return expected


def _fact(fact_filter: Callable[[DataFrame], DataFrame] = lambda f: f) -> Expected:
    return lambda reader, day: fact_filter(reader.partition(FACT, day))


def kpi_reconciliation(
    kpi: str, total_column: str, expected: Expected, deps: Sequence[Sequence[str]], group: str | None = None
) -> PartitionCheck:
    """sum(kpi.total_column) (per `group` when given) == rows of `expected`."""
    key = ("gold", kpi)

    @partition_check(key, "totals_reconcile_with_fact", f"sum({total_column}) equals the count from fact_title_added"
                     + (f", per {group}" if group else "") + ".", blocking=True, additional_deps=[FACT, *deps])
    def _body(df: DataFrame, day: dt.date, reader: TableReader) -> dg.AssetCheckResult:
        source = expected(reader, day)
        # Both sides in one query (one job, each table scanned once): a Spark action costs
        # ~0.2 s however small the tables, and the check ran two.
        if group is None:
            row = df.agg(F.sum(total_column).alias("got")).crossJoin(source.agg(F.count(F.lit(1)).alias("want"))).first()
            got, want = {"all": row["got"] or 0}, {"all": row["want"]}
        else:
            sides = df.groupBy(group).agg(
                F.sum(total_column).alias("got"), F.lit(True).alias("in_kpi"), F.lit(None).cast("long").alias("want")
            ).unionByName(source.groupBy(group).agg(
                F.lit(None).cast("long").alias("got"), F.lit(None).cast("boolean").alias("in_kpi"), F.count(F.lit(1)).alias("want")
            ))
            rows = sides.groupBy(group).agg(F.sum("got").alias("got"), F.max("in_kpi").alias("in_kpi"), F.sum("want").alias("want")).collect()
            got = {r[group]: r["got"] for r in rows if r["in_kpi"]}
            want = {r[group]: r["want"] for r in rows if r["want"] is not None}
        wrong = sorted((g for g in got.keys() | want.keys() if got.get(g, 0) != want.get(g, 0)), key=str)
        return dg.AssetCheckResult(
            passed=not wrong,
            metadata={"kpi_total": dg.MetadataValue.json(got), "expected": dg.MetadataValue.json(want)},
            description=naming(
                f"total(s) of {total_column} off the fact's count (group: KPI total, expected)",
                [f"{g}: {got.get(g, 0)}, {want.get(g, 0)}" for g in wrong[:20]], len(wrong),
            ) if wrong else None,
        )

    return _body


@partition_check(("gold", "kpi_rating_mix"), "shares_sum_to_one_per_type", "The shares of each type sum to 1.",
                 blocking=True)
def rating_shares(df: DataFrame, day: dt.date, reader: TableReader) -> dg.AssetCheckResult:
    sums = {r["type"]: r["s"] for r in df.groupBy("type").agg(F.sum("share").alias("s")).collect()}
    wrong = sorted((t for t, s in sums.items() if s is None or abs(s - 1) >= 1e-9), key=str)
    return dg.AssetCheckResult(
        passed=not wrong, metadata={"share_sums": dg.MetadataValue.json(sums)},
        description=naming("type(s) whose shares do not sum to 1 (type: sum)", [f"{t}: {sums[t]}" for t in wrong])
        if wrong else None,
    )


def _people_with_role(reader: TableReader, day: dt.date) -> DataFrame:
    """Bridge rows of titles in the fact. No distinct needed: the bridge is unique on
    (show_id, person_key, role) and the fact on show_id (blocking checks upstream of the KPI),
    so a semi join keeps exactly the distinct pairs, without aggregating millions of rows."""
    fact = reader.partition(FACT, day).select("show_id")
    bridge = reader.partition(BRIDGES["bridge_title_person"], day)
    return bridge.join(fact, "show_id", "left_semi").select("show_id", "person_key", "role")


checks = [
    key_check(IDS, ["show_id"]),
    one_type_per_title_key,
    no_unmerged_duplicates,
    key_check(DIM_TITLE, ["title_key"]),
    key_check(HISTORY, ["title_key", "valid_from"]),
    history_versions_ordered,
    history_current_equals_dim_title,
    key_check(("gold", "dim_person"), ["person_key"]),
    key_check(("gold", "dim_country"), ["country_key"]),
    key_check(("gold", "dim_genre"), ["genre_key"]),
    key_check(("gold", "dim_date"), ["date"]),
    key_check(FACT, ["title_key"]),
    key_check(BRIDGES["bridge_title_person"], ["show_id", "person_key", "role"]),
    fact_matches_dim_title,
    *[bridge_integrity(b) for b in BRIDGES.values()],
    kpi_reconciliation("kpi_titles_added_by_month", "titles", _fact(k.added), []),
    kpi_reconciliation("kpi_top_countries", "titles", _pairs(BRIDGES["bridge_title_country"], "country_key"),
                       [BRIDGES["bridge_title_country"]]),
    kpi_reconciliation("kpi_genre_by_year", "titles", _pairs(BRIDGES["bridge_title_genre"], "genre_key", k.added),
                       [BRIDGES["bridge_title_genre"]]),
    kpi_reconciliation("kpi_rating_mix", "titles", _fact(), []),
    rating_shares,
    kpi_reconciliation("kpi_top_people", "titles", _people_with_role, [BRIDGES["bridge_title_person"]], group="role"),
    kpi_reconciliation("kpi_movie_minutes_by_decade", "movies",
                       _fact(lambda f: k.movies_with_minutes(f).where(F.col("release_year").isNotNull())), []),
]
# Every model table and KPI warns on a sharp drop of its rows (a new KPI gets it by being in
# `kpi_assets`); title identity's tables follow the titles' counts, which silver and gold check.
for _asset in (*model_assets, *kpi_assets):
    if _asset is not gold_title_identity:
        checks.append(row_count_drop_check(tuple(_asset.key.path)))
