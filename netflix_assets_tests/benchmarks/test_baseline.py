"""The plain-PySpark baseline (benchmarks/baseline.py) builds the same lakehouse as
the asset graph: both run on the bundled real data (tutorial + Kaggle titles, the
tutorial lookups) for the same partition, and their tables are compared. This proves
the yardstick of `make bench` does the same work; it proves no value (both call the
project's transforms): test_independent_model.py does."""

import collections
import datetime as dt
import time

import pytest

from benchmarks import baseline as b
from netflix_assets.transforms import csv_records as cr
from netflix_assets.transforms.formats import TITLE_FORMATS

from netflix_assets_tests.conftest import KAGGLE_TITLES, TUTORIAL_DIR
from netflix_assets_tests.lakehouse import materialized

TITLES_FILES = [TUTORIAL_DIR / "netflix_titles.csv", KAGGLE_TITLES]
LAYERS = ("bronze", "silver", "gold", "quarantine")
# Raw-string tables: Spark's CSV reader returns null where the pipeline's parser keeps "".
RAW_TABLES = [*b.BRONZE_TABLES, "quarantine/netflix_titles", *[f"quarantine/{t}" for t in b.LOOKUP_FORMATS]]
SAMPLE = 100
EXACT_TABLES = [t for t in b.ALL_TABLES if t not in RAW_TABLES]


@pytest.fixture(scope="module")
def lakes(spark, both_exports_lake, tmp_path_factory):
    # The pipeline's lake is the session's (conftest.py): both files landed, one run for the day.
    pipeline, day, result = both_exports_lake.lake, both_exports_lake.day, both_exports_lake.result
    out = tmp_path_factory.mktemp("baseline")
    timings: dict[str, float] = {}
    start = time.perf_counter()
    rows = b.run_baseline(spark, [str(f) for f in TITLES_FILES], str(TUTORIAL_DIR), str(out), day, timings)
    print(f"\nbaseline: {time.perf_counter() - start:.1f} s ({len(rows)} tables)")
    return pipeline, out, day, result, rows


def test_the_baseline_writes_the_pipelines_table_set_with_the_same_row_counts(lakes):
    pipeline, _, _, result, rows = lakes
    assert result.success
    pipeline_rows = {
        key: meta["dagster/row_count"].value
        for key, meta in materialized(result).items()
        if key.split("/")[0] in LAYERS and key != "bronze/_ingested_files"
    }
    assert set(rows) == set(pipeline_rows) == set(b.ALL_TABLES)
    assert rows == pipeline_rows
    assert rows["bronze/netflix_titles"] == 6236 + 8807
    assert rows["silver/netflix_titles"] == rows["gold/netflix_titles"] == 6232 + 8807


def test_silver_gold_and_their_quarantines_are_equal(lakes):
    pipeline, out, day, _, _ = lakes
    differences = b.compare_lakes(str(pipeline.root), str(out), EXACT_TABLES, day, sample=SAMPLE)
    assert [str(d) for d in differences] == []


def test_raw_tables_are_equal_but_for_empty_strings_read_as_null(lakes):
    pipeline, out, day, _, _ = lakes
    assert b.compare_lakes(str(pipeline.root), str(out), RAW_TABLES, day, sample=SAMPLE, empty_equals_null=True) == []
    strict = b.compare_lakes(str(pipeline.root), str(out), RAW_TABLES, day, sample=SAMPLE)
    assert strict, "the pipeline keeps empty fields as '', Spark's CSV reader as null"
    summary = collections.Counter((d.table, d.kind, d.column) for d in strict)
    print("\nexpected differences (pipeline vs baseline, sampled):", *sorted(summary.items()), sep="\n  ")
    for diff in strict:
        if diff.kind == "value":
            assert (diff.a, diff.b) == ("", None), str(diff)
        else:  # the two broken tutorial records: show_id '' vs null, so their key differs
            assert diff.table in ("bronze/netflix_titles", "quarantine/netflix_titles") and diff.kind == "rows", str(diff)
            assert diff.key in (("",), (None,)) and {diff.a, diff.b} == {0, 4}, str(diff)


def test_the_bench_step_profile_covers_every_step_of_the_run_by_layer(lakes):
    """`make bench`'s "where the time goes" table: every executed step once, each in a known layer."""
    import dagster as dg

    from benchmarks import bench, pipeline_run

    pipeline, _, _, result, _ = lakes
    steps = pipeline_run._step_seconds(pipeline.instance, result.run_id)
    executed = {e.step_key for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_SUCCESS}
    assert set(steps) == executed
    kinds = collections.Counter(bench.step_kind(key) for key in steps)
    assert kinds["other"] == 0 and kinds["raw"] == 4 and kinds["bronze"] == 5  # a pull per lookup file; five bronze tables
    assert 0 < kinds["checks"] < len(result.get_asset_check_evaluations())  # one step per table, not per check
    stats = pipeline.instance.get_run_stats(result.run_id)
    from netflix_assets.deployments import local_step_threads

    at_once = local_step_threads()  # steps at once, in threads of the run's process
    assert 0 < sum(steps.values()) <= at_once * (stats.end_time - stats.start_time)
    table = bench.profile_lines([("bundled full run", steps)])
    assert table[2].startswith(f"| bundled full run | {len(steps)} |")


def test_malformed_records_are_rescued_as_the_pipeline_parser_rescues_them(spark, tmp_path):
    """A Kaggle record split over two lines (3 + 10 fields), an extra field, a
    missing one: Spark's corrupt-record column marks the same records as the
    pipeline's parser does, so silver quarantines the same ones."""
    header = ",".join(TITLE_FORMATS[1].columns)
    lines = [
        header,
        's1,Movie,Ok,Dir,"A, B",US,"May 1, 2020",2019,PG,90 min,Dramas,Fine.',
        "s2,Movie,Broken",
        ' Title,Dir,Cast,US,"May 1, 2020",2019,PG,90 min,Dramas,Split.',
        "s3,TV Show,Extra,Dir,Cast,US,\"May 1, 2020\",2019,PG,2 Seasons,Dramas,Too many.,oops",
        "s4,TV Show,Short,Dir,Cast,US",
        's5,Movie,"Multi\nline",,,,"May 1, 2020",2019,PG,90 min,Dramas,Fine too.',
    ]
    path = tmp_path / "kaggle.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    expected = [
        (r.values["show_id"], r.values["title"], r.rescued is not None)
        for r in cr.parse_records(lambda: open(path, "rb"), TITLE_FORMATS)
    ]
    titles, refused = b.bronze_titles(spark, [str(path)], dt.datetime.now(dt.timezone.utc), dt.date(2026, 1, 1))
    got = [(r["show_id"], r["title"], r["_rescued_data"] is not None) for r in titles.orderBy("_source_line").collect()]
    assert got == expected
    assert [rescued for *_, rescued in got] == [False, True, True, True, True, False]
    assert refused.count() == 0


SILVER_COLUMNS = ("show_id", "type", "title", "short_title", "description", "date_added", "release_year", "rating",
                  "rating_group", "duration_minutes", "duration_seasons", "type_flag")


def _rows(table, columns) -> collections.Counter:
    data = table.select(list(columns)).to_pylist()
    return collections.Counter(tuple(r[c] for c in columns) for r in data)


def test_the_duckdb_floor_builds_the_same_silver_and_gold_as_the_pipeline(lakes, tmp_path):
    """benchmarks/duckdb_floor.py is only a yardstick if it does the same work: on the bundled
    real data, every row of silver and gold titles and of the four silver lookups equals the pipeline's."""
    import pyarrow.parquet as pq
    from deltalake import DeltaTable

    from benchmarks import duckdb_floor
    from netflix_assets.transforms.formats import LOOKUPS

    pipeline, _, day, _, _ = lakes
    floor = duckdb_floor.run([str(f) for f in TITLES_FILES], TUTORIAL_DIR, tmp_path)

    def lake(table: str):
        return DeltaTable(str(pipeline.root / table)).to_pyarrow_table(filters=[("ingest_date", "=", dt.date.fromisoformat(day))])

    assert floor["rows"]["bronze_titles"] == 6236 + 8807
    assert _rows(pq.read_table(tmp_path / "silver_titles.parquet"), SILVER_COLUMNS) == _rows(lake("silver/netflix_titles"), SILVER_COLUMNS)
    ranked = ("show_id", "duration_minutes", "duration_ranking", "newflag")
    assert _rows(pq.read_table(tmp_path / "gold_titles.parquet"), ranked) == _rows(lake("gold/netflix_titles"), ranked)
    for name, lookup in LOOKUPS.items():
        columns = ("show_id", lookup.value_column)
        assert _rows(pq.read_table(tmp_path / f"silver_{name}.parquet"), columns) == _rows(lake(f"silver/{name}"), columns), name


def test_full_lake_copy_links_data_files_and_copies_delta_logs(tmp_path):
    """The curve's copy of the full run's lake: immutable files linked, Delta logs copied
    (a later commit that replaces `_last_checkpoint` must not change the copy)."""
    import shutil

    from benchmarks import pipeline_run

    table = tmp_path / "lake" / "gold" / "t"
    (table / "_delta_log").mkdir(parents=True)
    (table / "part-0.parquet").write_bytes(b"data")
    (table / "_delta_log" / "_last_checkpoint").write_text("v1")
    copy = tmp_path / "lake_full"
    shutil.copytree(tmp_path / "lake", copy, copy_function=pipeline_run._link_data_files)
    assert (copy / "gold/t/part-0.parquet").stat().st_ino == (table / "part-0.parquet").stat().st_ino
    (table / "_delta_log" / "_last_checkpoint").write_text("v2")
    assert (copy / "gold/t/_delta_log/_last_checkpoint").read_text() == "v1"


def test_the_lake_comparison_reports_each_kind_of_difference(tmp_path):
    """compare_lakes (delta-rs + DuckDB) finds a changed value, a missing row, a type change and
    a missing table, reads only the partition asked for, and takes "" as null only when told."""
    import pyarrow as pa
    from deltalake import write_deltalake

    day, other_day = dt.date(2026, 12, 1), dt.date(2026, 11, 30)

    def table(lake, name, rows, year_type=pa.int32()):
        data = pa.table({
            "show_id": pa.array([r[0] for r in rows], pa.string()),
            "title": pa.array([r[1] for r in rows], pa.string()),
            "release_year": pa.array([r[2] for r in rows], year_type),
            "_source_line": pa.array(range(len(rows)), pa.int32()),  # lineage: never compared
            "ingest_date": pa.array([r[3] for r in rows], pa.date32()),
        })
        write_deltalake(str(tmp_path / lake / name), data, partition_by=["ingest_date"])

    rows = [(f"s{i}", f"Title {i}", 2000 + i % 20, day) for i in range(40)]
    table("a", "silver/netflix_titles", rows + [("s0", "Old", 1990, other_day)])
    table("b", "silver/netflix_titles", [r if r[0] != "s7" else ("s7", "Changed", r[2], day) for r in rows if r[0] != "s9"]
          + [("s0", "Other day", 1, other_day)])
    table("a", "gold/netflix_titles", rows)
    table("b", "gold/netflix_titles", [(i, t if t != "Title 3" else "", y, d) for i, t, y, d in rows])
    table("a", "gold/dim_title", rows)
    table("b", "gold/dim_title", rows, year_type=pa.int64())
    table("a", "gold/fact_title_added", rows)
    table("b", "gold/fact_title_added", rows)

    def diffs(*tables, **kwargs):
        found = b.compare_lakes(str(tmp_path / "a"), str(tmp_path / "b"), list(tables), day, sample=1000, **kwargs)
        return sorted((d.table, d.kind, d.key, d.column, d.a, d.b) for d in found)

    assert diffs("gold/fact_title_added") == []
    assert diffs("silver/netflix_titles") == sorted([
        ("silver/netflix_titles", "row_count", None, None, 40, 39),
        ("silver/netflix_titles", "rows", ("s9",), None, 1, 0),
        ("silver/netflix_titles", "value", ("s7",), "title", "Title 7", "Changed"),
    ])
    assert diffs("gold/netflix_titles") == [("gold/netflix_titles", "value", ("s3",), "title", "Title 3", "")]
    assert diffs("gold/netflix_titles", empty_equals_null=True) == [("gold/netflix_titles", "value", ("s3",), "title", "Title 3", None)]
    assert [k for _, k, *_ in diffs("gold/dim_title")] == ["type"]
    assert [k for _, k, *_ in diffs("gold/dim_person")] == ["missing_table"]
