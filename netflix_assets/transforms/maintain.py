"""The gold model maintained from changes: each table of the model (but the history, which
`transforms/history.py` advances) updated from the rows its inputs lost and gained since it was
last written, as a change data feed gives them (pre- and post-images), by replacing exactly the
rows those changes can affect, as Databricks' incremental refresh of a materialized view does.

Each rule in `RULES` takes its inputs' changes and the inputs as they are now, and returns a
`Replacement` per output table: its new rows where a SQL predicate holds (a Delta `replaceWhere`:
the rows it replaces are the rows it deletes, so applying a replacement also yields the table's own
change for the rules downstream). Why each affected set is exact, given the rebuild (`build`, the
same rules the assets apply):

- Title identity is decided within a block: a candidate pair has the same `type` and normalised
  title, and a pair's `rivals` are counted over pairs of the same block. A show_id whose title or
  credits changed can change the identity of every title in its block before and after the change
  (it may move to another block), and of no other. So the recomputed show_ids `S` are the changed
  ones and every title of a block one of them was or is in; their rows of `title_source_ids` and
  `title_match_review` are recomputed from their rows alone (a pair is in one block: both its
  show_ids are in `S` or neither is).
- `dim_title` and `fact_title_added` have a row per title_key, made of its representative's titles
  row: the title_keys of the changed `title_source_ids` rows (before and after) and the current
  title_key of every show_id whose titles row changed. The bridges are per show_id: the show_ids of
  their lookup's and of `title_source_ids`' changes.
- `dim_person`, `dim_country`, `dim_genre` hold the distinct values of every lookup row: a value a
  change names is recomputed from the rows that name it now. `dim_date` is one aggregate over every
  title (the date_added range): rebuilt whenever titles change.
- KPIs are aggregates per group: the groups a changed row of their inputs was or is in are recounted
  from the inputs filtered to those groups (months, decades, ratings, countries, genres, people);
  a changed fact row also moves the countries, genres and people its title's bridge rows name now,
  if it changed in a column the KPI reads (`kpis.*_FACT_COLUMNS`; likewise the identity reads
  `identity.TITLE_COLUMNS`: a new rating moves no match, and no person's count).
  Rankings and shares span every group, so `kpi_top_countries`, `kpi_top_people` and
  `kpi_rating_mix` keep their other groups' stored counts, rank (or share) the whole table again
  and replace it whole; it is small next to what it counts (one row per person at most).

Keys and values of a change are collected to the driver (a replaceWhere predicate is a literal
list; a rule filtering other tables by thousands of keys joins a small DataFrame of them instead):
a caller rebuilds instead when a change is larger than the rebuild's break-even. No Dagster here.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from functools import reduce
from typing import Callable, Iterable, Mapping, Optional, Sequence

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from . import dimensional as d
from . import identity as ident
from . import kpis as k

WHOLE = "TRUE"  # the predicate of a table replaced whole (its partition)
SNAPSHOT = ("titles", "cast", "directors", "countries", "category")


@dataclasses.dataclass(frozen=True)
class Change:
    """The rows a table lost (pre-images, deletes) and gained (post-images, inserts). A row
    rewritten unchanged appears in both (a replaceWhere rewrites every row it matches): the rules
    compare the two (`_changed`), so it moves nothing downstream."""

    removed: DataFrame
    added: DataFrame


@dataclasses.dataclass(frozen=True)
class Replacement:
    """A table's new rows where `where` holds (SQL), and nothing else changes."""

    rows: DataFrame
    where: str
    held: tuple[DataFrame, ...] = ()  # persisted for the rule's outputs; unpersisted once they are stored

    def applied_to(self, table: DataFrame) -> DataFrame:
        """The table with the replacement applied, as Delta's replaceWhere commits it."""
        if self.where == WHOLE:
            return self.rows
        return table.where(F.expr(f"NOT coalesce({self.where}, false)")).unionByName(self.rows)

    def change(self, table: DataFrame) -> Change:
        """The change applying it makes to `table` (what the table's change data feed reports)."""
        return Change(table if self.where == WHOLE else table.where(F.expr(self.where)), self.rows)


Changes = Mapping[str, Change]
Tables = Mapping[str, DataFrame]


@dataclasses.dataclass(frozen=True)
class Rule:
    """How `outputs` follow `inputs`: `maintain(changes of inputs, tables now) -> {output: Replacement}`
    (`tables` holds the inputs as they are now and the outputs as stored)."""

    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    maintain: Callable[[Changes, Tables], dict[str, Replacement]]


# -------------------------------------------------------------- the rebuild (what the assets compute)


def build(titles: DataFrame, cast: DataFrame, directors: DataFrame, countries: DataFrame, category: DataFrame,
          keep: Callable[[DataFrame], DataFrame] = lambda df: df) -> dict[str, DataFrame]:
    """Every table of the gold model (but the history) from the gold snapshot: the assets' rules.
    `keep` holds what most tables read (the scored pairs, the title identity), e.g. persisted."""
    pairs = keep(ident.scored_pairs(titles, cast, directors))
    ids = keep(ident.source_ids(titles, pairs))
    bridges = {"person": d.bridge_title_person(cast, directors, ids),
               "country": d.bridge_title_value(countries, "country", "country", ids),
               "genre": d.bridge_title_value(category, "category", "genre", ids)}
    dims = {"person": d.dim_person(cast, directors), "country": d.dim_value(countries, "country", "country"),
            "genre": d.dim_value(category, "category", "genre")}
    fact, dim_title = d.fact_title_added(titles, ids), d.dim_title(titles, ids)
    return {
        "title_source_ids": ids, "title_match_review": ident.review(pairs), "dim_title": dim_title,
        **{f"dim_{name}": df for name, df in dims.items()}, "dim_date": d.dim_date(titles),
        **{f"bridge_title_{name}": df for name, df in bridges.items()}, "fact_title_added": fact,
        "kpi_titles_added_by_month": k.kpi_titles_added_by_month(fact),
        "kpi_top_countries": k.kpi_top_countries(bridges["country"], dims["country"], fact),
        "kpi_genre_by_year": k.kpi_genre_by_year(bridges["genre"], dims["genre"], fact),
        "kpi_rating_mix": k.kpi_rating_mix(dim_title),
        "kpi_top_people": k.kpi_top_people(bridges["person"], dims["person"], fact),
        "kpi_movie_minutes_by_decade": k.kpi_movie_minutes_by_decade(fact),
    }


# -------------------------------------------------------------- helpers


def _sql_literal(value) -> str:
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, dt.date):
        return f"DATE'{value.isoformat()}'"
    return "'" + str(value).replace("\\", "\\\\").replace("'", "\\'") + "'"


def is_in(column: str, values: Iterable) -> str:
    """SQL: `column` is one of `values` (a None among them matches a null)."""
    values = set(values)
    present = sorted((v for v in values if v is not None), key=repr)
    terms = [f"{column} IN ({', '.join(_sql_literal(v) for v in present)})"] if present else []
    terms += [f"{column} IS NULL"] if None in values else []
    return "(" + " OR ".join(terms) + ")" if terms else "FALSE"


def _in(column: "str | Column", values: Sequence) -> Column:
    """`is_in` as a Column, never null."""
    col = F.col(column) if isinstance(column, str) else column
    present = [v for v in values if v is not None]
    match = col.isin(present) if present else F.lit(False)
    return F.coalesce(match | col.isNull() if None in values else match, F.lit(False))


def _values(frames: Iterable[DataFrame], column: "str | Column") -> list:
    """The distinct values of `column` over `frames` (one Spark job)."""
    col = F.col(column) if isinstance(column, str) else column
    frames = list(frames)
    if not frames:
        return []
    union = reduce(DataFrame.unionByName, [df.select(col.alias("v")) for df in frames])
    return sorted((r[0] for r in union.distinct().collect()), key=lambda v: (v is None, repr(v)))


def _of(df: DataFrame, show_ids: Sequence[str]) -> DataFrame:
    return _where_in(df, "show_id", show_ids)


def _where_in(df: DataFrame, column: str, values: Sequence) -> DataFrame:
    """`df`'s rows whose `column` is one of `values` (a join with `_keys`, not a literal list)."""
    return df.join(_keys(df, column, values), column, "left_semi")


def _changed(changes: Changes, name: str, columns: Sequence[str] = ()) -> list[DataFrame]:
    """The change's rows, removed or added, that the other side lacks in the `columns` a rule reads
    (default: all): a row rewritten unchanged moves nothing, and neither does a title whose rating
    changed for the ranking of people, which reads the fact's show_ids only. Every rule treats a
    removed row as it does an added one, so both come back as one frame: one aggregate over the two
    sides tagged -1 and +1 (each read and shuffled once), where two subtracts read and shuffle each
    side twice."""
    change = changes.get(name)
    if change is None:
        return []
    cols = list(columns or change.removed.columns)
    side = "__maintain_side"
    both = change.removed.select(*cols, F.lit(-1).alias(side)).unionByName(change.added.select(*cols, F.lit(1).alias(side)))
    one_side = both.groupBy(*cols).agg(F.min(side).alias(f"{side}_lo"), F.max(side).alias(f"{side}_hi"))
    return [one_side.where(F.col(f"{side}_lo") == F.col(f"{side}_hi")).select(*cols)]


def _show_ids(changes: Changes, *names: str, columns: Optional[Mapping[str, Sequence[str]]] = None) -> list[str]:
    frames = [df for name in names for df in _changed(changes, name, (columns or {}).get(name, ()))]
    return [v for v in _values(frames, "show_id") if v is not None]


def _keys(like: DataFrame, column: str, values: Sequence) -> DataFrame:
    """`values` as a one-column DataFrame (typed as `like`'s `column`): a join with it filters by
    thousands of keys without a literal list in every plan that reads them (`kpi_top_people`'s rule,
    recounting the people of 1,000 changed titles of 100k: 45 s with literal lists, 2.9 s joined; with 700
    new titles among them, the identity's rule 7.8 s -> 2.6 s and `dim_person`'s 5.7 s -> 0.4 s;
    BENCHMARKS.md). A replace predicate stays a literal list (`is_in`): Delta's replaceWhere takes SQL."""
    field = like.schema[column]
    return like.sparkSession.createDataFrame([(v,) for v in values], T.StructType([field]))


# -------------------------------------------------------------- the rules


def _blocks(titles: DataFrame) -> DataFrame:
    return titles.select("show_id", "type", ident.normalised(F.col("title")).alias("norm_title"))


def _identity(changes: Changes, t: Tables) -> dict[str, Replacement]:
    changed = _show_ids(changes, "titles", "cast", "directors", columns={"titles": ident.TITLE_COLUMNS})
    if not changed:
        return {}
    blocks = [_blocks(df) for df in _changed(changes, "titles", ident.TITLE_COLUMNS)] + [_blocks(_of(t["titles"], changed))]
    same_block = _blocks(t["titles"]).join(reduce(DataFrame.unionByName, blocks).drop("show_id"),
                                           ["type", "norm_title"], "left_semi")
    s_ids = sorted(set(changed) | set(_values([same_block], "show_id")))
    titles, cast, directors = (_of(t[name], s_ids) for name in ("titles", "cast", "directors"))
    pairs = ident.scored_pairs(titles, cast, directors).persist()  # both outputs read them
    on_s = is_in("show_id", s_ids)
    return {"title_source_ids": Replacement(ident.source_ids(titles, pairs), on_s, (pairs,)),
            "title_match_review": Replacement(ident.review(pairs), on_s, (pairs,))}


def _per_title(changes: Changes, t: Tables) -> dict[str, Replacement]:
    ids = t["title_source_ids"]
    moved = _changed(changes, "title_source_ids") + [_of(ids, _show_ids(changes, "titles"))]
    keys = [v for v in _values(moved, "title_key") if v is not None]
    if not keys:
        return {}
    on_keys, keyed = is_in("title_key", keys), _where_in(ids, "title_key", keys)
    return {"dim_title": Replacement(d.dim_title(t["titles"], keyed), on_keys),
            "fact_title_added": Replacement(d.fact_title_added(t["titles"], keyed), on_keys)}


def _bridge(output: str, lookups: Mapping[str, str], value: str) -> Rule:
    """A bridge (per show_id) from its lookups {lookup: value column} and the title identity."""
    def maintain(changes: Changes, t: Tables) -> dict[str, Replacement]:
        show_ids = _show_ids(changes, *lookups, "title_source_ids")
        if not show_ids:
            return {}
        ids = _of(t["title_source_ids"], show_ids)
        rows = [_of(t[name], show_ids) for name in lookups]
        if value == "person":
            bridge = d.bridge_title_person(*rows, ids)
        else:
            (name, column), = lookups.items()
            bridge = d.bridge_title_value(rows[0], column, value, ids)
        return {output: Replacement(bridge, is_in("show_id", show_ids))}

    return Rule((*lookups, "title_source_ids"), (output,), maintain)


def _dimension(output: str, lookups: Mapping[str, str], value: str) -> Rule:
    """A dimension of the distinct values of its lookups {lookup: value column}."""
    def maintain(changes: Changes, t: Tables) -> dict[str, Replacement]:
        named = [df.select(F.col(column).alias(value)) for name, column in lookups.items() for df in _changed(changes, name)]
        values = [v for v in _values(named, value) if v is not None]
        if not values:
            return {}
        rows = [_where_in(t[name], column, values) for name, column in lookups.items()]
        dim = d.dim_person(*rows) if value == "name" else d.dim_value(rows[0], next(iter(lookups.values())), value)
        return {output: Replacement(dim, is_in(value, values))}

    return Rule(tuple(lookups), (output,), maintain)


def _dim_date(changes: Changes, t: Tables) -> dict[str, Replacement]:
    return {"dim_date": Replacement(d.dim_date(t["titles"]), WHOLE)} if "titles" in changes else {}


def _month(fact: DataFrame) -> DataFrame:
    return k.added(fact).select(F.trunc("date_added", "month").alias("month"))


def _decade() -> Column:
    return (F.floor(F.col("release_year") / 10) * 10).cast("int")


def _by_month(changes: Changes, t: Tables) -> dict[str, Replacement]:
    months = _values([_month(df) for df in _changed(changes, "fact_title_added")], "month")
    if not months:
        return {}
    fact = t["fact_title_added"].where(F.trunc("date_added", "month").isin(months))
    return {"kpi_titles_added_by_month": Replacement(k.kpi_titles_added_by_month(fact), is_in("month", months))}


def _by_decade(changes: Changes, t: Tables) -> dict[str, Replacement]:
    decades = [v for v in _values(_changed(changes, "fact_title_added"), _decade()) if v is not None]
    if not decades:
        return {}
    fact = t["fact_title_added"].where(_decade().isin(decades))
    return {"kpi_movie_minutes_by_decade": Replacement(k.kpi_movie_minutes_by_decade(fact),
                                                       is_in("release_decade", decades))}


def _regrouped(kept: DataFrame, recounted: DataFrame, derived: str, then) -> DataFrame:
    """A KPI whose `derived` column spans groups: the stored rows `kept` (the groups no change
    affects), the recounted affected ones, ranked or shared again by `then`."""
    return then(kept.drop(derived).unionByName(recounted.drop(derived)))


def _rating_mix(changes: Changes, t: Tables) -> dict[str, Replacement]:
    ratings = _values(_changed(changes, "dim_title"), "rating")
    if not ratings:
        return {}
    recounted = k.kpi_rating_mix(t["dim_title"].where(_in("rating", ratings)))
    share = F.col("titles") / F.sum("titles").over(Window.partitionBy("ingest_date", "type"))
    kept = t["kpi_rating_mix"].where(~_in("rating", ratings))
    mix = _regrouped(kept, recounted, "share", lambda df: df.withColumn("share", share))
    return {"kpi_rating_mix": Replacement(mix, WHOLE)}


def _group_keys(changes: Changes, t: Tables, bridge: str, dim: str, key: str, fact_columns: Sequence[str]) -> list:
    """The keys (country, genre, person) whose titles a change may recount: named by a changed
    bridge or dimension row, or by a bridge row of a title whose fact row changed in the
    `fact_columns` the KPI reads."""
    moved = _changed(changes, bridge) + _changed(changes, dim)
    facts = _show_ids(changes, "fact_title_added", columns={"fact_title_added": fact_columns})
    moved += [_of(t[bridge], facts)] if facts else []
    return [v for v in _values(moved, key) if v is not None]


def _ranked(output: str, bridge: str, dim: str, key: str, name: str, count, within: Sequence[str],
            fact_columns: Sequence[str]) -> Rule:
    def maintain(changes: Changes, t: Tables) -> dict[str, Replacement]:
        keys = _group_keys(changes, t, bridge, dim, key, fact_columns)
        if not keys:
            return {}
        affected = _keys(t[bridge], key, keys)
        of_keys = [t[table].join(affected, key, "left_semi") for table in (bridge, dim)]
        ranking = Window.partitionBy("ingest_date", *within).orderBy(F.col("titles").desc())
        kept = t[output].withColumn(key, d.surrogate_key(F.col(name))).join(affected, key, "left_anti").drop(key)
        rows = _regrouped(kept, count(*of_keys, t["fact_title_added"]), "rank",
                          lambda df: df.withColumn("rank", F.rank().over(ranking)))
        return {output: Replacement(rows, WHOLE)}

    return Rule((bridge, dim, "fact_title_added"), (output,), maintain)


def _genre_by_year(changes: Changes, t: Tables) -> dict[str, Replacement]:
    keys = _group_keys(changes, t, "bridge_title_genre", "dim_genre", "genre_key", k.GENRE_BY_YEAR_FACT_COLUMNS)
    if not keys:
        return {}
    affected = _keys(t["bridge_title_genre"], "genre_key", keys)
    bridge, dim = (t[table].join(affected, "genre_key", "left_semi") for table in ("bridge_title_genre", "dim_genre"))
    rows = k.kpi_genre_by_year(bridge, dim, t["fact_title_added"])
    stored = t["kpi_genre_by_year"].withColumn("genre_key", d.surrogate_key(F.col("genre")))
    genres = _values([rows, stored.join(affected, "genre_key", "left_semi")], "genre")
    return {"kpi_genre_by_year": Replacement(rows, is_in("genre", genres))}


LISTS = {"country": ("countries", "country"), "genre": ("category", "category")}

RULES: tuple[Rule, ...] = (
    Rule(("titles", "cast", "directors"), ("title_source_ids", "title_match_review"), _identity),
    Rule(("titles", "title_source_ids"), ("dim_title", "fact_title_added"), _per_title),
    _dimension("dim_person", {"cast": "cast_name", "directors": "director_name"}, "name"),
    *[_dimension(f"dim_{value}", {lookup: column}, value) for value, (lookup, column) in LISTS.items()],
    Rule(("titles",), ("dim_date",), _dim_date),
    _bridge("bridge_title_person", {"cast": "cast_name", "directors": "director_name"}, "person"),
    *[_bridge(f"bridge_title_{value}", {lookup: column}, value) for value, (lookup, column) in LISTS.items()],
    Rule(("fact_title_added",), ("kpi_titles_added_by_month",), _by_month),
    Rule(("fact_title_added",), ("kpi_movie_minutes_by_decade",), _by_decade),
    Rule(("dim_title",), ("kpi_rating_mix",), _rating_mix),
    _ranked("kpi_top_countries", "bridge_title_country", "dim_country", "country_key", "country",
            k.kpi_top_countries, (), k.TOP_COUNTRIES_FACT_COLUMNS),
    _ranked("kpi_top_people", "bridge_title_person", "dim_person", "person_key", "name", k.kpi_top_people, ("role",),
            k.TOP_PEOPLE_FACT_COLUMNS),
    Rule(("bridge_title_genre", "dim_genre", "fact_title_added"), ("kpi_genre_by_year",), _genre_by_year),
)


Store = Callable[[str, Replacement, DataFrame], "tuple[DataFrame, Change]"]


def in_memory(name: str, replacement: Replacement, table: DataFrame) -> "tuple[DataFrame, Change]":
    """A replacement applied to a DataFrame: the table as it is then, and its change."""
    return replacement.applied_to(table), replacement.change(table)


def maintain_all(tables: Tables, changes: Changes, store: Store = in_memory) -> tuple[dict[str, DataFrame], dict[str, Change]]:
    """Every rule in order, each seeing its inputs' changes: the tables and every table's change.
    `store(table name, replacement, table as stored)` keeps a replacement (a test applies it in
    memory; a Delta write commits it, and its change data feed is its change)."""
    tables, changes = dict(tables), dict(changes)
    for rule in RULES:
        ins = {name: changes[name] for name in rule.inputs if name in changes}
        replacements = rule.maintain(ins, tables)
        try:
            for output, replacement in replacements.items():
                tables[output], changes[output] = store(output, replacement, tables[output])
        finally:
            for held in {id(df): df for r in replacements.values() for df in r.held}.values():
                held.unpersist()
    return tables, changes
