"""Every row of every gold table of one partition, compared with an independent implementation.

`independent_model.py` computes the gold layer from the raw CSV files with plain Python (no code of
`netflix_assets`), from the data contract. Here the real pipeline builds a lake once per dataset
(the bundled tutorial titles, the Kaggle titles file landed instead of them, and both files landed
together, where the same titles arrive under two keys; the lookups are the tutorial ones, pulled
over HTTP by all three), and each gold table is compared IN FULL with the
oracle's, as a multiset of rows (`ingest_date` dropped, floats rounded to 9 places). Hash keys
the contract does not define (person_key, country_key, genre_key) are compared through the
natural value they stand for, after checking each dimension maps keys to values one-to-one; a
title_key through the show_ids it groups (the product's gold/title_source_ids).
"""

from __future__ import annotations

from collections import Counter

import pytest


from netflix_assets_tests import independent_model as oracle
from netflix_assets_tests.conftest import KAGGLE_TITLES, TUTORIAL_DIR, today_iso
from netflix_assets_tests.lakehouse import Lakehouse

# The session's today (NETFLIX_TODAY, pinned by conftest.py): the same day in every module.
DAY = today_iso()

DATASETS = {"tutorial": [TUTORIAL_DIR / "netflix_titles.csv"], "kaggle": [KAGGLE_TITLES],
            # Both exports in one lake: the same titles under two keys, conformed by title_key.
            "tutorial+kaggle": [TUTORIAL_DIR / "netflix_titles.csv", KAGGLE_TITLES]}

TABLES = [
    "gold/netflix_titles", "quarantine/gold_netflix_titles",
    "gold/netflix_cast", "gold/netflix_directors", "gold/netflix_countries", "gold/netflix_category",
    "gold/title_source_ids", "gold/title_match_review", "gold/dim_title", "gold/dim_title_history", "gold/dim_person", "gold/dim_country", "gold/dim_genre", "gold/dim_date",
    "gold/bridge_title_person", "gold/bridge_title_country", "gold/bridge_title_genre", "gold/fact_title_added",
    "gold/kpi_titles_added_by_month", "gold/kpi_top_countries", "gold/kpi_genre_by_year", "gold/kpi_rating_mix",
    "gold/kpi_top_people", "gold/kpi_movie_minutes_by_decade",
]

# Dimension -> (its hash key column, the natural value it stands for); bridge -> its dimension.
DIMENSIONS = {"gold/dim_person": ("person_key", "name"), "gold/dim_country": ("country_key", "country"),
              "gold/dim_genre": ("genre_key", "genre")}
BRIDGES = {"gold/bridge_title_person": "gold/dim_person", "gold/bridge_title_country": "gold/dim_country",
           "gold/bridge_title_genre": "gold/dim_genre"}
SHOWN = 10


class Built:
    """One dataset's lake after one pipeline run, its oracle, and the product's tables as read."""

    def __init__(self, lake: Lakehouse, result, expected: dict[str, oracle.Table]):
        self.lake, self.result, self.expected = lake, result, expected
        self._read: dict[str, list[dict]] = {}

    def rows(self, table: str) -> list[dict]:
        if table not in self._read:
            path = self.lake.root / table
            # A quarantine table nothing was ever dropped to may not exist: it holds no rows.
            exists = (path / "_delta_log").exists()
            self._read[table] = self.lake.rows(table, DAY) if exists or not table.startswith("quarantine/") else []
        return self._read[table]


@pytest.fixture(scope="module", params=list(DATASETS))
def built(request, spark, lookup_server, tmp_path_factory):
    dataset = request.param
    shared_lakes = {"tutorial": "tutorial_lake", "tutorial+kaggle": "both_exports_lake"}  # conftest.py, read only
    if dataset in shared_lakes:
        shared = request.getfixturevalue(shared_lakes[dataset])
        assert shared.day == DAY
        lake, result = shared.lake, shared.result
        files = list(zip(DATASETS[dataset], shared.landed_uris, strict=True))
    else:
        lake = Lakehouse.create(tmp_path_factory.mktemp("independent"), lookup_server)
        files = [(path, lake.land(path, f"{i}_{path.parent.name}.csv")) for i, path in enumerate(DATASETS[dataset])]
        result = lake.run(DAY)
    # The order the lake ingested the files in (its lineage): which source describes a merged title.
    titles = lake.rows("gold/netflix_titles", DAY)
    ingest_order = [f for _, f in sorted({(r["_ingested_at"], r["_source_file"]) for r in titles})]
    # The lookup server serves the bundled tutorial folder: the oracle reads the same bytes.
    expected = oracle.gold_layer(files, TUTORIAL_DIR, DAY, ingest_order)
    return Built(lake, result, expected)


def _value(v):
    if isinstance(v, list):  # dim_title_history's countries and genres
        return tuple(v)
    return round(v, 9) if isinstance(v, float) else v


def _key_to_value(built: Built, dimension: str) -> dict:
    key, value = DIMENSIONS[dimension]
    rows = built.rows(dimension)
    mapping = {r[key]: r[value] for r in rows}
    assert len(mapping) == len(rows), f"{dimension}: {key} is not unique"
    assert len(set(mapping.values())) == len(mapping), f"{dimension}: one {value} has several {key}s"
    return mapping


def _title_members(built: Built) -> dict:
    """The product's title_key -> "|".join(its sorted show_ids): the value the oracle keys titles by."""
    members: dict = {}
    for r in built.rows("gold/title_source_ids"):
        members.setdefault(r["title_key"], []).append(r["show_id"])
    return {key: "|".join(sorted(ids)) for key, ids in members.items()}


def _product_rows(built: Built, table: str, columns: list[str]) -> list[tuple]:
    rows = built.rows(table)
    if "title_key" in columns:
        titles = _title_members(built)
        rows = [{**r, "title_key": None if r["title_key"] is None else titles.get(r["title_key"], f"<{r['title_key']}>")}
                for r in rows]
    if table in BRIDGES:  # resolve the hash key through the product's own dimension
        key, value = DIMENSIONS[BRIDGES[table]]
        names = _key_to_value(built, BRIDGES[table])
        rows = [{**r, value: names.get(r[key], f"<{key} {r[key]} not in {BRIDGES[table]}>")} for r in rows]
    elif table in DIMENSIONS:
        _key_to_value(built, table)
    if rows:
        missing = [c for c in columns if c not in rows[0]]
        assert not missing, f"{table} lacks the columns {missing} (has {sorted(rows[0])})"
    return [tuple(_value(r[c]) for c in columns) for r in rows]


def _diff(table: str, columns: list[str], got: Counter, want: Counter) -> str:
    missing, extra = want - got, got - want
    lines = [f"{table}: {sum(got.values())} rows, expected {sum(want.values())}; "
             f"{sum(missing.values())} missing, {sum(extra.values())} unexpected. Columns: {columns}"]
    for label, rows in (("missing (oracle only)", missing), ("unexpected (product only)", extra)):
        shown = sorted(rows.elements(), key=repr)[:SHOWN]
        if shown:
            lines.append(f"  {label}, first {len(shown)}:")
            lines += [f"    {row!r}" for row in shown]
    return "\n".join(lines)


def test_the_pipeline_run_succeeds(built):
    assert built.result.success


def test_the_oracle_covers_every_gold_table(built):
    """A gold table added to the product without its independent rule would go unproven."""
    assert sorted(built.expected) == sorted(TABLES)
    root = built.lake.root
    written = {f"gold/{p.name}" for p in (root / "gold").iterdir() if (p / "_delta_log").exists()}
    written |= {f"quarantine/{p.name}" for p in (root / "quarantine").glob("gold_*") if (p / "_delta_log").exists()}
    assert written <= set(TABLES), f"gold tables without an independent rule: {sorted(written - set(TABLES))}"


@pytest.mark.parametrize("table", TABLES)
def test_gold_table_equals_the_independent_model(built, table):
    expected = built.expected[table]
    want = Counter(tuple(_value(v) for v in row) for row in expected.rows)
    got = Counter(_product_rows(built, table, expected.columns))
    assert got == want, _diff(table, expected.columns, got, want)
