"""Facts read from the Delta log without Spark (lib/delta.py) equal what Spark computes,
and the code falls back to Spark whenever the log cannot answer exactly; per-file work
runs in a bounded number of tasks."""

import datetime as dt
import hashlib

import pytest
from pyspark.sql import functions as F

from netflix_assets.lib import delta
from netflix_assets.lib.delta import commit_metadata, write_partitions
from netflix_assets.transforms import bronze as bronze_transforms
from netflix_assets.transforms.formats import KAGGLE, TITLE_FORMATS

DAYS = [dt.date(2026, 1, 1), dt.date(2026, 1, 2), dt.date(2026, 1, 3)]


def _write_days(spark, uri: str, rows_per_day: dict[dt.date, int]) -> None:
    for day, rows in rows_per_day.items():
        df = spark.range(rows).withColumn("ingest_date", F.lit(day).cast("date"))
        write_partitions(df, uri, day, day + dt.timedelta(days=1))


def _spark_counts(spark, uri: str) -> dict[dt.date, int]:
    rows = spark.read.format("delta").load(uri).groupBy("ingest_date").count().collect()
    return {r["ingest_date"]: r["count"] for r in rows}


def test_partition_row_counts_and_last_commit_match_spark(spark, tmp_path):
    uri = str(tmp_path / "t")
    _write_days(spark, uri, {DAYS[0]: 7, DAYS[1]: 3, DAYS[2]: 11})
    _write_days(spark, uri, {DAYS[1]: 5})  # a re-run replaces the partition
    assert delta.partition_row_counts(uri) == _spark_counts(spark, uri) == {DAYS[0]: 7, DAYS[1]: 5, DAYS[2]: 11}

    from delta.tables import DeltaTable

    expected = DeltaTable.forPath(spark, uri).history(1).first()
    commit = delta.last_commit(uri)
    assert commit["version"] == expected["version"] == 3
    assert commit["operation"] == expected["operation"]
    assert commit["operationMetrics"]["numOutputRows"] == expected["operationMetrics"]["numOutputRows"] == "5"
    assert commit_metadata(spark, uri)["dagster/row_count"] == 5


def test_the_log_declines_when_it_cannot_be_exact(spark, tmp_path):
    # Files written without statistics: numRecords is unknown.
    no_stats = str(tmp_path / "no_stats")
    spark.conf.set("spark.databricks.delta.stats.collect", "false")
    try:
        _write_days(spark, no_stats, {DAYS[0]: 4})
    finally:
        spark.conf.set("spark.databricks.delta.stats.collect", "true")
    assert delta.partition_row_counts(no_stats) is None

    # Deletion vectors: a file's numRecords still counts the rows a DELETE removed.
    with_dv = str(tmp_path / "with_dv")
    _write_days(spark, with_dv, {DAYS[0]: 10})
    spark.sql(f"ALTER TABLE delta.`{with_dv}` SET TBLPROPERTIES ('delta.enableDeletionVectors' = 'true')")
    spark.sql(f"DELETE FROM delta.`{with_dv}` WHERE id < 3")
    assert _spark_counts(spark, with_dv) == {DAYS[0]: 7}
    assert delta.partition_row_counts(with_dv) is None

    # Not a table: nothing to say, and no exception.
    assert delta.partition_row_counts(str(tmp_path / "missing")) is None
    assert delta.last_commit(str(tmp_path / "missing")) is None


def test_per_file_work_runs_in_a_bounded_number_of_tasks(spark, tmp_path):
    header = ",".join(KAGGLE.columns)
    files = []
    for i in range(30):
        path = tmp_path / f"f{i:02}.csv"
        path.write_text(f'{header}\ns{i},Movie,T{i},,,,"May 1, 2020",2019,PG,90 min,Dramas,D.\n', encoding="utf-8")
        files.append(str(path))
    cores = spark.sparkContext.defaultParallelism
    assert bronze_transforms.file_tasks(spark, 30) == min(30, 2 * cores)
    assert bronze_transforms.file_tasks(spark, 1) == 1

    now = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
    parsed = bronze_transforms.parse_files(spark, [(f, now) for f in files], TITLE_FORMATS)
    assert parsed.rdd.getNumPartitions() == bronze_transforms.file_tasks(spark, 30) < 30
    got = sorted((r["_source_file"], r["show_id"], r["_source_line"]) for r in parsed.collect())
    assert got == sorted((f, f"s{i}", 2) for i, f in enumerate(files))
    digests, errors = bronze_transforms.file_digests(spark, files)
    assert errors == {} and digests == {f: hashlib.sha256(open(f, "rb").read()).hexdigest() for f in files}


@pytest.mark.parametrize("rows", [{DAYS[0]: 10, DAYS[1]: 4}, {DAYS[0]: 10, DAYS[1]: 6}])
def test_the_row_count_check_reads_the_counts_from_the_log(spark, tmp_path, rows):
    """row_count_not_halved on the log's counts: 4 after 10 warns, 6 after 10 passes."""
    from netflix_assets.lib.checks import TableReader, row_count_drop_check
    from netflix_assets.resources.lake import LakeResource
    from netflix_assets.resources.spark import SparkResource

    lake = LakeResource(root=str(tmp_path))
    _write_days(spark, lake.table_uri("silver", "t"), rows)
    check = row_count_drop_check(("silver", "t"))
    reader = TableReader(SparkResource(), lake)
    result = check.evaluate(reader.partition(("silver", "t"), DAYS[1]), DAYS[1], reader)
    assert result.passed == (rows[DAYS[1]] * 2 >= rows[DAYS[0]])
    assert result.metadata["rows"].value == rows[DAYS[1]]
    assert result.metadata["previous_rows"].value == 10


def test_new_tables_keep_reader_version_1_where_deletion_vectors_are_on_by_default(spark, tmp_path):
    """Databricks' "Auto-enable deletion vectors" workspace setting (here its open-source twin, the
    session's default table property) gives a new table deletion vectors, which Synapse serverless
    SQL and the log's row counts cannot read: the project's writes create tables without them."""
    from deltalake import DeltaTable

    from netflix_assets.lib.delta import save_table

    day = DAYS[0]
    df = spark.createDataFrame([("s1", day)], "show_id string, ingest_date date")
    default = "spark.databricks.delta.properties.defaults.enableDeletionVectors"
    spark.conf.set(default, "true")
    try:
        write_partitions(df, str(tmp_path / "partitioned"), day, day + dt.timedelta(days=1))
        save_table(df, str(tmp_path / "whole"))
        df.write.format("delta").save(str(tmp_path / "plain"))
    finally:
        spark.conf.unset(default)
    for name in ("partitioned", "whole"):
        protocol = DeltaTable(str(tmp_path / name)).protocol()
        assert (protocol.min_reader_version, protocol.reader_features) == (1, None), name
    assert "deletionVectors" in DeltaTable(str(tmp_path / "plain")).protocol().reader_features


def test_statistics_cover_the_key_and_lineage_columns_and_still_skip_files(spark, tmp_path):
    """Tables get file statistics (min/max/nulls) on the columns that replace predicates name
    (`lib.delta.STATS_COLUMNS`), not on every column: numRecords stays (row counts come from it), and a
    keyed replace still rewrites only the file holding its key."""
    import json

    from netflix_assets.lib.delta import STATS_COLUMNS

    uri = str(tmp_path / "t")
    day = DAYS[0]

    def rows(ids, source):
        return spark.createDataFrame(
            [(i, "a long description " * 20, source, day) for i in ids],
            "show_id string, description string, _source_file string, ingest_date date",
        )

    write_partitions(rows(["s1", "s2"], "f1").coalesce(1), uri, day, day + dt.timedelta(days=1))
    rows(["s8", "s9"], "f2").coalesce(1).write.format("delta").mode("append").save(uri)
    stats = [json.loads(a["stats"]) for a in _adds(uri)]
    assert all(s["numRecords"] == 2 for s in stats)
    assert all(set(s["minValues"]) == {"show_id", "_source_file"} for s in stats)
    assert {"show_id", "_source_file"} <= set(STATS_COLUMNS)

    write_partitions(rows(["s9"], "f3"), uri, day, day + dt.timedelta(days=1), narrower="show_id IN ('s9')")
    metrics = delta.last_commit(uri)["operationMetrics"]
    assert metrics["numRemovedFiles"] == "1"  # the file of s1/s2 is left alone
    assert sorted(r["show_id"] for r in spark.read.format("delta").load(uri).collect()) == ["s1", "s2", "s8", "s9"]


def _adds(uri: str) -> list[dict]:
    import glob
    import json

    adds = []
    for path in sorted(glob.glob(f"{uri}/_delta_log/*.json")):
        with open(path) as f:
            adds += [json.loads(line)["add"] for line in f if '"add"' in line]
    return adds


def test_a_write_replaces_the_days_of_its_window_and_only_the_narrowed_rows_of_them():
    from netflix_assets.lib.delta import partition_predicate, sql_in

    day = dt.date(2026, 11, 24)
    assert partition_predicate(day, day + dt.timedelta(days=1)) == "ingest_date >= DATE'2026-11-24' AND ingest_date < DATE'2026-11-25'"
    narrowed = partition_predicate(day, day + dt.timedelta(days=1), sql_in("_source_file", ["a.csv", "it's.csv"]))
    assert narrowed.endswith(" AND (_source_file IN ('a.csv', 'it\\'s.csv'))")


def test_a_row_outside_the_rows_a_write_replaces_fails_it_before_its_commit(spark, tmp_path):
    # The write checks its rows itself (a hashed IN list; Delta's own check, a linear one, is off).
    from netflix_assets.lib.delta import REPLACE_WHERE_CHECK, sql_in

    uri = str(tmp_path / "t")
    day, next_day = DAYS[0], DAYS[1]
    rows = "show_id string, v int"

    def on(day, *values):
        return spark.createDataFrame(list(values), rows).withColumn("ingest_date", F.lit(day))

    write_partitions(on(day, ("s1", 1), ("s2", 2)), uri, day, next_day)
    keys = sql_in("show_id", [f"s{i}" for i in range(2, 1000)])
    faults = [
        (on(next_day, ("s1", 10)), None),  # a wrong date
        (on(day, ("s2", 20), ("x", 10)), keys),  # a key the write does not replace
        (on(day, (None, 10)), keys),  # no key: a re-run would not replace it either
    ]
    for df, narrower in faults:
        with pytest.raises(Exception, match="outside the rows this write replaces"):
            write_partitions(df, uri, day, next_day, narrower=narrower)
    assert spark.conf.get(REPLACE_WHERE_CHECK) == "false"
    assert delta.last_commit(uri)["version"] == 0
    write_partitions(on(day, ("s2", 20)), uri, day, next_day, narrower=keys)
    assert sorted(tuple(r) for r in spark.read.format("delta").load(uri).select("show_id", "v").collect()) == [("s1", 1), ("s2", 20)]
