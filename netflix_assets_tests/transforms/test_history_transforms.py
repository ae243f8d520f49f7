"""The title history (SCD type 2) on hand-made daily snapshots, and its sequencing rule within a day
from bronze records through silver's dedup, the gold snapshot and dim_title."""

import datetime as dt
from functools import reduce

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from netflix_assets.transforms import dimensional as d
from netflix_assets.transforms import gold as g
from netflix_assets.transforms import history as h
from netflix_assets.transforms import silver as s

from netflix_assets_tests.frames import D1, D2, T0, bronze_titles

D3, D4 = D2 + dt.timedelta(days=1), D2 + dt.timedelta(days=2)
DIM = ("title_key bigint, show_id string, title string, type string, rating string, release_year int, "
       "date_added date, duration_minutes int, duration_seasons int, description string, ingest_date date")


def _dim(spark, rows):
    """rows: (title_key, show_id, rating, day); the other attributes fixed."""
    return spark.createDataFrame(
        [(k, sid, "T", "Movie", rating, 2001, D1, 90, 1, "d", day) for k, sid, rating, day in rows], DIM)


def _lookup(spark, column, rows):
    return spark.createDataFrame(rows, f"show_id string, {column} string, ingest_date date")


def _history(df):
    return _history_rows(df.collect())


def _history_rows(rows):
    return sorted((r["title_key"], r["valid_from"], r["valid_to"], r["is_current"], r["rating"], tuple(r["countries"]))
                  for r in rows)


def test_a_change_its_reversal_a_title_leaving_and_a_new_country_each_make_a_version(spark):
    dim = _dim(spark, [
        (1, "a", "R", D1), (1, "a", "PG", D2), (1, "a", "R", D3), (1, "a", "R", D4),  # changed, then reverted
        (2, "b", "R", D1), (2, "b", "R", D3),                                          # absent from D2
        (3, "c", "R", D1), (3, "c", "R", D2), (3, "c", "R", D3),                        # countries change on D3
    ])
    countries = _lookup(spark, "country", [
        ("c", "France", D1), ("c", "Chad", D1), ("c", "Chad", D2), ("c", "France", D2),  # the same set: no change
        ("c", "Chad", D3), ("c", "France", D3), ("c", "Peru", D3),
    ])
    history = h.title_history(h.title_versions(dim, countries, _lookup(spark, "category", [])), D4)
    assert history.columns == [*h.HISTORY_COLUMNS, "ingest_date"]
    assert _history(history) == [
        (1, D1, D2, False, "R", ()), (1, D2, D3, False, "PG", ()), (1, D3, None, True, "R", ()),
        (2, D1, D2, False, "R", ()), (2, D3, D4, False, "R", ()),  # left on D2, back on D3, gone on D4
        (3, D1, D3, False, "R", ("Chad", "France")), (3, D3, D4, False, "R", ("Chad", "France", "Peru")),
    ]
    # As of D2 the same snapshots say less: the history of a day never looks past it.
    assert _history(h.title_history(h.title_versions(dim, countries, _lookup(spark, "category", [])), D2)) == [
        (1, D1, D2, False, "R", ()), (1, D2, None, True, "PG", ()),
        (2, D1, D2, False, "R", ()),
        (3, D1, None, True, "R", ("Chad", "France")),
    ]


def test_two_changes_on_one_day_make_one_version_the_days_last(spark):
    """From bronze: show 1 is rated R on D1, then PG at 09:00 and TV-MA at 10:00 on D2; show 2 goes
    from R to PG and back to R within D2. Silver keeps each day's latest record, so D2 ends with 1 at
    TV-MA (one version, not two) and 2 unchanged (no version)."""
    def record(show_id, rating, day, hour, name):
        return {"show_id": show_id, "type": "Movie", "title": f"t{show_id}", "rating": rating, "duration": "90 min",
                "release_year": "2001", "date_added": "January 1, 2020", "description": "d", "ingest_date": day,
                "_ingested_at": T0.replace(day=day.day, hour=hour), "_source_file": f"file:///landing/{name}.csv",
                "_source_format": "kaggle"}
    bronze = bronze_titles(spark, [
        record("1", "R", D1, 8, "a"), record("2", "R", D1, 8, "a"),
        record("1", "PG", D2, 9, "b"), record("2", "PG", D2, 9, "b"),
        record("1", "TV-MA", D2, 10, "c"), record("2", "R", D2, 10, "c"),
    ])
    silver = s.silver_titles(s.classify_titles(bronze))
    ids = spark.createDataFrame([(11, "1", True), (12, "2", True)], "title_key bigint, show_id string, is_representative boolean")
    dim = d.dim_title(g.snapshot_as_of(silver, D1), ids).unionByName(d.dim_title(g.snapshot_as_of(silver, D2), ids))
    no_lists = _lookup(spark, "country", []), _lookup(spark, "category", [])
    assert _history(h.title_history(h.title_versions(dim, *no_lists), D2)) == [
        (11, D1, D2, False, "R", ()), (11, D2, None, True, "TV-MA", ()),
        (12, D1, None, True, "R", ()),
    ]


def test_advancing_the_stored_history_equals_a_rebuild_after_every_random_step(spark, monkeypatch):
    """20 random steps over 6 titles: a new snapshot day (sometimes after a gap) or a same-day
    refresh of the last one; titles change rating or countries, revert, leave and come back; now and
    then a day is empty, an older day is rewritten (a backfill) or the history step fails after
    dim_title was written. After every step the history the asset would write (advanced from the
    trusted stored partitions, else rebuilt) equals the rebuild from every snapshot, row for row."""
    import random

    rng, titles, ratings, places = random.Random(27), range(1, 7), ("R", "PG", "TV-MA"), ("Chad", "France", "Peru")
    dims, countries, written, stored, stored_at, schema, steps = {}, {}, {}, {}, {}, None, []
    state = {k: ("R", ("France",)) for k in titles}
    day, clock, advanced_steps = D1, 0, 0
    events = {"empty day": 0, "backfill": 0, "failed history step": 0, "rewind": 0}
    rewind = h.rewind

    def counted_rewind(history, on):
        events["rewind"] += 1
        return rewind(history, on)

    monkeypatch.setattr(h, "rewind", counted_rewind)
    for step in range(20):
        if step and rng.random() > 0.3:  # else a same-day refresh of `day`
            day += dt.timedelta(days=rng.choice((1, 1, 2)))
        for k in titles:
            rating, listed = state[k]
            if rng.random() < 0.3:
                rating = rng.choice(ratings)
            if rng.random() < 0.2:
                listed = tuple(sorted(rng.sample(places, rng.randint(0, 2))))
            state[k] = rating, listed
        present = [] if step and rng.random() < 0.1 else [k for k in titles if rng.random() > 0.15]
        events["empty day"] += not present
        written_days = [day]
        if len(dims) > 2 and rng.random() < 0.15:  # a backfill rewrites an older snapshot too
            older = rng.choice(sorted(d for d in dims if d < day))
            dims[older] = [(k, sid, "TV-MA", d) for k, sid, _, d in dims[older]]
            written_days.append(older)
            events["backfill"] += 1
        dims[day] = [(k, f"s{k}", state[k][0], day) for k in present]
        countries[day] = [(f"s{k}", c, day) for k in present for c in state[k][1]]
        for written_day in written_days:
            clock += 1
            written[written_day] = clock
        dim = _dim(spark, [r for rows in dims.values() for r in rows])
        versions = h.title_versions(dim, _lookup(spark, "country", [c for rows in countries.values() for c in rows]),
                                    _lookup(spark, "category", []))
        rebuilt = h.title_history(versions, day)
        schema = schema or rebuilt.schema
        own = spark.createDataFrame([r for rows in stored.values() for r in rows], schema)
        snapshots = {d: written[d] for d, rows in dims.items() if rows and d <= day}
        previous = h.previous_history(own, {d: stored_at[d] for d in stored if stored[d]}, snapshots, day)
        advanced_steps += previous is not None
        result = rebuilt if previous is None else h.advance(previous[0], versions.where(f"ingest_date = '{day}'"), day)
        rows = result.collect()
        steps.append((day, rows, rebuilt.withColumn("_step", F.lit(step))))
        if step and rng.random() < 0.1:
            events["failed history step"] += 1
            continue  # dim_title is newer than the stored history
        clock += 1
        stored[day], stored_at[day] = rows, clock
    # The rebuilds of all steps in one Spark job (their inputs are each step's own frames).
    rebuilds = reduce(DataFrame.unionByName, [r for _, _, r in steps]).collect()
    for step, (day, rows, _) in enumerate(steps):
        assert _history_rows(rows) == _history_rows(r for r in rebuilds if r["_step"] == step), (step, day)
    assert advanced_steps >= 10 and all(events.values()), (advanced_steps, events)
    assert any(len({r["valid_from"] for r in rows}) > 3 for _, rows, _ in steps)


def test_a_stored_partition_is_advanced_only_when_it_saw_every_snapshot_as_it_is_now(spark):
    """Write times: the stored history of D1 was written at 5, after D1's snapshot (at 4)."""
    history = h.title_history(h.title_versions(_dim(spark, [(1, "a", "R", D1)]), _lookup(spark, "country", []),
                                               _lookup(spark, "category", [])), D1)
    assert h.previous_history(history, {D1: 5}, {D1: 4, D3: 6}, D3)[1] == str(D1)
    assert h.previous_history(history, {D1: 5}, {D1: 4, D2: 6, D3: 7}, D3) is None  # D2 never seen
    assert h.previous_history(history, {D1: 5}, {D1: 6, D3: 7}, D3) is None  # D1 rewritten since
    assert h.previous_history(history, {D1: 5}, {D1: 4}, D3) is None  # D3's snapshot is empty
    assert h.previous_history(history, {D2: 5}, {D1: 4}, D1) is None  # nothing stored up to D1
    # A same-day refresh rewinds D's own partition if it is newer than every earlier snapshot.
    assert h.previous_history(history, {D1: 5}, {D1: 9}, D1)[1] == f"{D1} (rewound)"
    assert h.previous_history(history.where("false"), {D3: 5}, {D1: 6, D3: 9}, D3) is None
