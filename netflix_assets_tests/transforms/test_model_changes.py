"""The dimensional model maintained from changes (`transforms.changes`) equals its full rebuild
after every step of a random sequence of landed files: new titles, titles edited, moved between
types, countries and genres, deleted, joining or leaving another source's title (which changes
the title's representative), and lookup rows of no title; on the real Kaggle file and on
synthetic titles. Each step's change feed is either keyed (the touched show_ids' rows removed and
added again, as a keyed refresh writes them) or whole (every row of the day, as a rebuild does),
with the rows' provenance renewed, so most of each feed cancels."""

import csv
import datetime as dt
import random
import zlib
import json
from functools import reduce

import pytest
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from netflix_assets.transforms.changes import CHANGE_TYPE, MAINTAINED, feed_rows

from netflix_assets_tests.conftest import KAGGLE_TITLES

DAY = dt.date(2026, 1, 1)
STEPS = 20
TITLES = ("show_id string, title string, short_title string, type string, type_flag string, rating string, "
          "rating_group string, release_year int, date_added date, duration_minutes int, duration_seasons int, "
          "description string, _source_file string, ingest_date date")
IDS = "show_id string, title_key bigint, is_representative boolean, match_rule string, ingest_date date"
LOOKUPS = {"cast": "cast_name", "directors": "director_name", "countries": "country", "category": "category"}
# An asset argument that is not the input's own name.
ARGUMENT = {("bridge_title_country", "lookup"): "countries", ("bridge_title_genre", "lookup"): "category"}
RATINGS = ["TV-MA", "TV-14", "R", "PG-13", "PG", None]


def key_of(show_id: str) -> int:
    return zlib.crc32(show_id.encode()) - 2**31


class Catalog:
    """The gold snapshot of one day as Python values, changed the way landed files change it."""

    def __init__(self, titles: dict, lookups: dict, rng: random.Random):
        self.titles = titles  # show_id -> attributes
        self.lookups = lookups  # name -> {show_id: [values]}
        self.ids = {sid: (key_of(sid), True) for sid in titles}  # show_id -> (title_key, is_representative)
        self.rng = rng
        self.file = "file:///landing/0.csv"
        self.serial = 0

    def pools(self, name):
        values = sorted({v for vs in self.lookups[name].values() for v in vs})
        return values or ["x"]

    def _new_id(self):
        self.serial += 1
        return f"n{self.serial}"

    def add(self, touched):
        for _ in range(self.rng.randint(1, 12)):
            sid = self._new_id()
            base = self.titles[self.rng.choice(sorted(self.titles))] if self.titles else None
            self.titles[sid] = dict(base or {}, title=f"t{sid}", rating=self.rng.choice(RATINGS),
                                    type=self.rng.choice(["Movie", "TV Show"]), release_year=self.rng.randint(1990, 2021),
                                    date_added=self.rng.choice([None, DAY - dt.timedelta(days=self.rng.randint(0, 900))]),
                                    duration_minutes=self.rng.randint(60, 150), duration_seasons=None, description="d")
            for name in LOOKUPS:
                pool = self.pools(name) + [f"new {name} {self.serial}"]
                self.lookups[name][sid] = self.rng.sample(pool, self.rng.randint(0, min(3, len(pool))))
            group = [s for s, (_, rep) in self.ids.items() if rep]
            if group and self.rng.random() < 0.3:  # a second source of a known title: it now describes it
                other = self.rng.choice(sorted(group))
                key = self.ids[other][0]
                self.ids[other] = (key, False)
                self.ids[sid] = (key, True)
                touched.add(other)
            else:
                self.ids[sid] = (key_of(sid), True)
            touched.add(sid)

    def edit(self, touched):
        for sid in self.rng.sample(sorted(self.titles), 5):
            row = self.titles[sid]
            change = self.rng.choice(["rating", "type", "date_added", "description", "duration", "same"])
            if change == "rating":
                row["rating"] = self.rng.choice(RATINGS)
            elif change == "type":
                row["type"] = "Movie" if row["type"] == "TV Show" else "TV Show"
            elif change == "date_added":
                row["date_added"] = self.rng.choice([None, DAY - dt.timedelta(days=self.rng.randint(0, 3000))])
            elif change == "description":
                row["description"] = f"edited {self.serial}"
            elif change == "duration":
                row["duration_minutes"] = self.rng.randint(1, 300)
            touched.add(sid)  # "same": landed again unchanged

    def move(self, touched):
        for sid in self.rng.sample(sorted(self.titles), 4):
            name = self.rng.choice(sorted(LOOKUPS))
            pool = self.pools(name)
            self.lookups[name][sid] = self.rng.sample(pool, self.rng.randint(0, min(3, len(pool))))
            touched.add(sid)

    def delete(self, touched):
        for sid in self.rng.sample(sorted(self.titles), 2):
            key, rep = self.ids.pop(sid)
            del self.titles[sid]
            for name in LOOKUPS:
                self.lookups[name].pop(sid, None)
            others = sorted(s for s, (k, _) in self.ids.items() if k == key)
            if rep and others:
                self.ids[others[0]] = (key, True)
                touched.add(others[0])
            touched.add(sid)

    def split(self, touched):
        pairs = sorted(s for s, (_, rep) in self.ids.items() if not rep)
        if pairs:
            sid = self.rng.choice(pairs)
            self.ids[sid] = (key_of(sid), True)
            touched.add(sid)

    def orphan(self, touched):
        sid = f"orphan{self.serial}"
        self.serial += 1
        self.lookups[self.rng.choice(sorted(LOOKUPS))][sid] = ["nobody's"]
        touched.add(sid)

    def step(self) -> set:
        touched: set = set()
        self.file = f"file:///landing/{self.serial}.csv"
        for change in self.rng.sample([self.add, self.edit, self.move, self.delete, self.split, self.orphan],
                                      self.rng.randint(1, 4)):
            change(touched)
        return touched

    def rows(self, touched=None, provenance="file:///landing/0.csv"):
        """Python rows of every input (of the `touched` show_ids only, when given)."""
        keep = (lambda sid: True) if touched is None else (lambda sid: sid in touched)
        titles = [(sid, t["title"], t["title"][:10], t["type"], t["type"][:1], t["rating"], t["rating"], t["release_year"],
                   t["date_added"], t["duration_minutes"], t["duration_seasons"], t["description"], provenance, DAY)
                  for sid, t in sorted(self.titles.items()) if keep(sid)]
        ids = [(sid, key, rep, "no_match", DAY) for sid, (key, rep) in sorted(self.ids.items()) if keep(sid)]
        lookups = {name: [(sid, v, provenance, DAY) for sid, vs in sorted(rows.items()) if keep(sid)
                          for v in dict.fromkeys(vs)]
                   for name, rows in self.lookups.items()}
        return {"titles": titles, "ids": ids, **lookups}


def frames(spark, rows: dict):
    schemas = {"titles": TITLES, "ids": IDS,
               **{name: f"show_id string, {column} string, _source_file string, ingest_date date"
                  for name, column in LOOKUPS.items()}}
    return {name: spark.createDataFrame(rows[name], schemas[name]) for name in schemas}


def kaggle() -> tuple[dict, dict]:
    titles, lookups = {}, {name: {} for name in LOOKUPS}
    columns = {"cast": "cast", "directors": "director", "countries": "country", "category": "listed_in"}
    with open(KAGGLE_TITLES, newline="", encoding="utf-8-sig") as handle:
        for r in csv.DictReader(handle):
            sid = r["show_id"]
            minutes = int(r["duration"].split()[0]) if r["duration"].endswith("min") else None
            seasons = int(r["duration"].split()[0]) if "Season" in r["duration"] else None
            added = dt.datetime.strptime(r["date_added"].strip(), "%B %d, %Y").date() if r["date_added"].strip() else None
            titles[sid] = {"title": r["title"], "type": r["type"], "rating": r["rating"] or None,
                           "release_year": int(r["release_year"]), "date_added": added, "duration_minutes": minutes,
                           "duration_seasons": seasons, "description": r["description"]}
            for name, column in columns.items():
                lookups[name][sid] = [v.strip() for v in r[column].split(",") if v.strip()]
    return titles, lookups


def synthetic(rng: random.Random) -> tuple[dict, dict]:
    titles = {f"s{i}": {"title": f"title {i}", "type": rng.choice(["Movie", "TV Show"]), "rating": rng.choice(RATINGS),
                        "release_year": rng.randint(1960, 2021), "duration_minutes": rng.randint(60, 180),
                        "duration_seasons": None, "description": f"about {i}",
                        "date_added": rng.choice([None, DAY - dt.timedelta(days=rng.randint(0, 4000))])}
              for i in range(300)}
    pools = {"cast": [f"actor {i}" for i in range(150)], "directors": [f"director {i}" for i in range(40)],
             "countries": ["France", "India", "Japan", "Peru", "Chad"], "category": ["Dramas", "Comedies", "Docuseries"]}
    lookups = {name: {sid: rng.sample(pool, rng.randint(0, 3)) for sid in titles} for name, pool in pools.items()}
    return titles, lookups


@pytest.fixture
def one_partition(spark):
    """Small frames: one shuffle partition per stage (the test runs ~40 multi-stage jobs per dataset)."""
    before = spark.conf.get("spark.sql.shuffle.partitions")
    spark.conf.set("spark.sql.shuffle.partitions", "1")
    yield spark
    spark.conf.set("spark.sql.shuffle.partitions", before)


def _tagged(frames_by_table: dict, tag_column: str = "_table"):
    """One frame of (`_table`, `row`: the row as JSON) over frames of different schemas."""
    parts = [df.select(F.lit(name).alias(tag_column), F.to_json(F.struct(*sorted(df.columns))).alias("row"))
             for name, df in frames_by_table.items()]
    return reduce(DataFrame.unionByName, parts)


@pytest.mark.parametrize("dataset", ["kaggle", "synthetic"])
def test_the_maintained_model_equals_its_rebuild_after_every_step(one_partition, dataset):
    spark = one_partition
    rng = random.Random(27)
    catalog = Catalog(*(kaggle() if dataset == "kaggle" else synthetic(rng)), rng)
    inputs = frames(spark, catalog.rows())
    named = {table: {arg: ARGUMENT.get((table, arg), arg) for arg in rule.reads} for table, rule in MAINTAINED.items()}
    stored = _tagged({table: rule.build(**{arg: inputs[name] for arg, name in named[table].items()})
                      for table, rule in MAINTAINED.items()})
    tables = {table: {} for table in MAINTAINED}  # table -> {row JSON: count}
    for r in stored.collect():
        tables[r["_table"]][r["row"]] = tables[r["_table"]].get(r["row"], 0) + 1
    recomputed = 0
    for step in range(STEPS):
        whole = step % 3 == 2  # every third feed rewrites the whole day
        before = catalog.rows()
        touched = catalog.step()
        removed = before if whole else {name: [r for r in rows if r[0] in touched] for name, rows in before.items()}
        added = catalog.rows(None if whole else touched, provenance=f"file:///landing/{step + 1}.csv")
        inputs = frames(spark, catalog.rows())
        feeds = {name: old.withColumn(CHANGE_TYPE, F.lit("delete")).unionByName(new.withColumn(CHANGE_TYPE, F.lit("insert")))
                 for (name, old), new in zip(frames(spark, removed).items(), frames(spark, added).values())}
        # One job for every table's changed keys, one for their recomputed rows and their rebuilds.
        keyed = reduce(DataFrame.unionByName, [
            rule.keys_of({arg: feed_rows(feeds[name], rule.reads[arg]) for arg, name in named[table].items()},
                         inputs["ids"]).select(F.lit(table).alias("_table"), F.col("key").cast("string").alias("key"))
            for table, rule in MAINTAINED.items()])
        keys = {table: [] for table in MAINTAINED}
        for r in keyed.collect():
            keys[r["_table"]].append(r["key"])
        typed = {table: [int(k) for k in ks] if MAINTAINED[table].column == "title_key" else ks for table, ks in keys.items()}
        fresh = _tagged({table: rule.rebuild_of({arg: inputs[name] for arg, name in named[table].items()}, typed[table])
                         for table, rule in MAINTAINED.items()}, "_fresh")
        expected = _tagged({table: rule.build(**{arg: inputs[name] for arg, name in named[table].items()})
                            for table, rule in MAINTAINED.items()})
        rows = fresh.select(F.col("_fresh").alias("_table"), "row", F.lit(True).alias("fresh")).unionByName(
            expected.withColumn("fresh", F.lit(False))).collect()
        rebuilt = {table: {} for table in MAINTAINED}
        for table in MAINTAINED:  # the stored rows of the changed keys are replaced
            column, gone = MAINTAINED[table].column, set(typed[table])
            tables[table] = {row: n for row, n in tables[table].items() if json.loads(row)[column] not in gone}
        for r in rows:
            target = tables if r["fresh"] else rebuilt
            target[r["_table"]][r["row"]] = target[r["_table"]].get(r["row"], 0) + 1
        for table in MAINTAINED:
            assert tables[table] == rebuilt[table], (dataset, step, table)
            recomputed += len(keys[table])
    assert recomputed > 0
