"""Serving the lake to BI tools: the SQL endpoint (`make serve`: Spark's Thrift JDBC/ODBC server)
queried over the wire by a real JDBC client (the `beeline` shipped in the pyspark wheel), the
catalog kept by the pipeline, the tables' Delta protocol readable by Synapse and Power BI, and
every column described. One server for the module, over the session's tutorial lake."""

import datetime as dt
import itertools
import os
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest
from deltalake import DeltaTable

from netflix_assets.io_managers.json_records import JSON_IO_MANAGER_KEY
from netflix_assets.lib import columns
from netflix_assets.resources.sql_endpoint import SqlEndpointResource
from netflix_assets.serving import catalog, thrift_server
from netflix_assets.resources.lake import LakeResource
from netflix_assets.serving.assets import KEY as SQL_CATALOG
from netflix_assets.serving.assets import lake_tables
from netflix_assets.serving.catalog import Table

ROOT = Path(__file__).resolve().parents[2]
LAYERS = ("bronze", "silver", "gold", "quarantine")


# --- the catalog's plan, on hand-made states ---------------------------------------------------

WANTED = [Table("gold", "dim_title", "/lake/gold/dim_title"), Table("silver", "netflix_titles", "/lake/silver/netflix_titles")]


def test_a_fresh_catalog_gets_its_schemas_and_tables():
    assert catalog.plan(WANTED, {}) == [
        "CREATE SCHEMA IF NOT EXISTS gold",
        "CREATE SCHEMA IF NOT EXISTS silver",
        "CREATE TABLE IF NOT EXISTS gold.`dim_title` USING DELTA LOCATION '/lake/gold/dim_title'",
        "CREATE TABLE IF NOT EXISTS silver.`netflix_titles` USING DELTA LOCATION '/lake/silver/netflix_titles'",
    ]


def test_an_up_to_date_catalog_is_left_alone():
    # The metastore stores a local path as file:/...; a foreign schema's tables are not ours.
    registered = {("gold", "dim_title"): "file:/lake/gold/dim_title", ("silver", "netflix_titles"): "/lake/silver/netflix_titles/",
                  ("analysts", "my_view_table"): "file:/elsewhere"}
    assert catalog.plan(WANTED, registered) == []


SCHEMA_TREE = ("Catalog: spark_catalog\nType: EXTERNAL\nProvider: delta\nLocation: file:/lake/gold/{name}\n"
               "Partition Provider: Catalog\nSchema: root\n{fields}\n")


class ShowTables:
    """A DB-API cursor answering `registered_catalog`'s queries with hand-made rows (Spark 4.2's shapes)."""

    def __init__(self, tables: dict, stores_schemas: str = "true"):
        self.tables, self.stores, self.executed = tables, stores_schemas, []

    def execute(self, statement):
        self.executed.append(statement)

    def fetchall(self):
        last = self.executed[-1]
        if last.startswith("SET "):
            return [(last[4:], self.stores)]
        if last == "SHOW SCHEMAS":
            return [("gold",)]
        return [("gold", name, False, SCHEMA_TREE.format(name=name, fields=fields)) for name, fields in self.tables.items()]


def test_a_table_whose_columns_changed_since_its_registration_is_registered_again():
    """Tools listing columns read them from the metastore, which holds them as of the registration:
    a column added or retyped since means registering the table again, one table at a time."""
    title = [("title_key", "long"), ("title", "string"), ("a: b", "struct"), ("ingest_date", "date")]
    wanted = [Table("gold", "dim_title", "/lake/gold/dim_title", tuple(title)),
              Table("gold", "dim_date", "/lake/gold/dim_date", (("date", "date"), ("ingest_date", "date")))]
    tree = "\n".join(f" |-- {name}: {kind} (nullable = true)" for name, kind in title)
    nested = " |    |-- x: long (nullable = true)"
    stored = {"dim_title": f"{tree}\n{nested}", "dim_date": " |-- ingest_date: date (nullable = true)\n |-- date: date (nullable = true)"}
    # As registered: same names and types, whatever their order; a nested field is not a column.
    assert catalog.sync(ShowTables(stored), wanted, "/lake") == []
    # A column retyped since, and one added: each table dropped right before it is created again.
    retyped = {**stored, "dim_title": tree.replace("title_key: long", "title_key: integer"),
               "dim_date": " |-- date: date (nullable = true)"}
    assert catalog.sync(ShowTables(retyped), wanted, "/lake") == [
        "CREATE SCHEMA IF NOT EXISTS gold",
        "DROP TABLE IF EXISTS gold.`dim_date`", "CREATE TABLE IF NOT EXISTS gold.`dim_date` USING DELTA LOCATION '/lake/gold/dim_date'",
        "DROP TABLE IF EXISTS gold.`dim_title`", "CREATE TABLE IF NOT EXISTS gold.`dim_title` USING DELTA LOCATION '/lake/gold/dim_title'"]
    # An endpoint that stores no schemas (started without the setting, another server on the port):
    # nothing to compare, so no registering again on every run.
    assert catalog.sync(ShowTables({"dim_title": "", "dim_date": ""}, stores_schemas="<undefined>"), wanted, "/lake") == []


def test_a_dropped_renamed_or_moved_table_is_unregistered_and_registered_again():
    registered = {("gold", "dim_title"): "file:/old_lake/gold/dim_title", ("gold", "kpi_old_name"): "file:/lake/gold/kpi_old_name",
                  ("silver", "netflix_titles"): "file:/lake/silver/netflix_titles"}
    assert catalog.plan(WANTED, registered) == [
        "CREATE SCHEMA IF NOT EXISTS gold",
        "CREATE SCHEMA IF NOT EXISTS silver",
        "DROP TABLE IF EXISTS gold.`dim_title`",
        "DROP TABLE IF EXISTS gold.`kpi_old_name`",
        "CREATE TABLE IF NOT EXISTS gold.`dim_title` USING DELTA LOCATION '/lake/gold/dim_title'",
    ]


def test_a_run_on_another_lake_re_points_nothing_and_no_users_table_is_dropped():
    """The endpoint is shared: tables served from another lake stay so for a run (a benchmark's lake),
    a BI user's own external table elsewhere is never dropped, and `make serve` starting on this
    lake (`take_over`) moves the wanted names here."""
    registered = {("gold", "dim_title"): "file:/bench/lake/gold/dim_title", ("gold", "analyst_extract"): "file:/data/extract",
                  ("gold", "kpi_old_name"): "file:/lake/gold/kpi_old_name", ("silver", "netflix_titles"): "file:/lake/silver/netflix_titles"}
    schemas = ["CREATE SCHEMA IF NOT EXISTS gold", "CREATE SCHEMA IF NOT EXISTS silver"]
    assert catalog.plan(WANTED, registered, "/lake") == [*schemas, "DROP TABLE IF EXISTS gold.`kpi_old_name`"]
    assert catalog.served_elsewhere(WANTED, registered, "/lake") == {("gold", "dim_title"): "file:/bench/lake/gold/dim_title"}
    assert catalog.plan(WANTED, registered, "/lake/", take_over=True) == [
        *schemas, "DROP TABLE IF EXISTS gold.`dim_title`", "DROP TABLE IF EXISTS gold.`kpi_old_name`",
        "CREATE TABLE IF NOT EXISTS gold.`dim_title` USING DELTA LOCATION '/lake/gold/dim_title'",
    ]


def test_a_managed_table_a_bi_user_created_is_not_the_catalogs_to_drop():
    """`CREATE TABLE gold.x AS SELECT ...` over the endpoint makes a managed table: dropping it would
    delete its data, so the catalog does not list it (SHOW TABLE EXTENDED's rows, as Spark 4.2 gives them)."""
    def info(name, kind, location):
        return f"Catalog: spark_catalog\nDatabase: gold\nTable: {name}\nType: {kind}\nProvider: delta\nLocation: {location}\n"

    class Cursor:
        executed: list = []

        def execute(self, statement):
            self.executed.append(statement)

        def fetchall(self):
            if self.executed[-1].startswith("SET "):
                return [(self.executed[-1][4:], "true")]
            if self.executed[-1] == "SHOW SCHEMAS":
                return [("default",), ("gold",)]
            assert self.executed[-1] == "SHOW TABLE EXTENDED IN gold LIKE '*'", self.executed[-1]
            return [("gold", "dim_title", False, info("dim_title", "EXTERNAL", "file:/lake/gold/dim_title")),
                    ("gold", "analyst_extract", False, info("analyst_extract", "MANAGED", "file:/warehouse/gold.db/analyst_extract"))]

    cursor = Cursor()
    assert catalog.registered_tables(cursor, ["gold"]) == {("gold", "dim_title"): "file:/lake/gold/dim_title"}
    assert catalog.sync(cursor, [Table("gold", "dim_title", "/lake/gold/dim_title")], "/lake", registered=None) == []
    assert not any(s.startswith("DROP") for s in cursor.executed)


def test_an_endpoint_that_accepts_and_never_answers_fails_the_registration_instead_of_hanging():
    """A stuck server (or another program on the port) accepts connections: `answers()` says yes,
    and the step would have waited for the run's maximum runtime, the day's other runs queued."""
    import time

    with socket.create_server(("127.0.0.1", 0)) as silent:
        endpoint = SqlEndpointResource(port=silent.getsockname()[1], timeout_seconds=0.5)
        assert endpoint.answers()
        started = time.monotonic()
        with pytest.raises(Exception, match="(?i)timed? ?out"):
            with endpoint.cursor():
                pass
        assert time.monotonic() - started < 60


def test_a_location_is_a_quoted_literal():
    plan = catalog.plan([Table("gold", "t", "/it's/a \\ path")], {})
    assert plan[-1] == "CREATE TABLE IF NOT EXISTS gold.`t` USING DELTA LOCATION '/it\\'s/a \\\\ path'"


def test_make_serve_refuses_a_taken_port_and_says_what_to_do(capsys):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        assert thrift_server.main(["--port", str(sock.getsockname()[1])]) == 1
    assert "NETFLIX_SQL_PORT=<port> make serve" in capsys.readouterr().err


# --- what BI tools read -----------------------------------------------------------------------

def _lake_tables(root: Path) -> dict[str, Path]:
    return {f"{layer}/{p.name}": p for layer in LAYERS for p in sorted((root / layer).iterdir()) if (p / "_delta_log").is_dir()}


def test_every_table_stays_readable_by_synapse_serverless_and_power_bi(tutorial_lake):
    """Synapse serverless SQL and Power BI's DeltaLake.Table read reader version 1 tables with
    writer version <= 2 (no deletion vectors, column mapping or v2 checkpoints: table features).
    A change that turns one on (a table property, a newer writer's default) fails here."""
    tables = _lake_tables(tutorial_lake.lake.root)
    assert len(tables) == 41
    for name, path in tables.items():
        protocol = DeltaTable(str(path)).protocol()
        assert (protocol.min_reader_version, protocol.reader_features) == (1, None), name
        assert protocol.min_writer_version <= 2 and not protocol.writer_features, name


def test_every_silver_gold_and_quarantine_column_is_described_in_the_table_the_ui_and_the_contract(tutorial_lake):
    lake = tutorial_lake.lake
    tables = {name: path for name, path in _lake_tables(lake.root).items() if not name.startswith("bronze/")}
    schemas = {name: [f.name for f in DeltaTable(str(path)).schema().fields] for name, path in tables.items()}
    assert {name: columns.undocumented(name, cols) for name, cols in schemas.items() if columns.undocumented(name, cols)} == {}
    for name, path in tables.items():
        comments = {f.name: (f.metadata or {}).get("comment") for f in DeltaTable(str(path)).schema().fields}
        assert comments == columns.describe(name, schemas[name]), name  # the Delta schema's comments
    # The UI's Columns table: the materialization's column schema.
    for name in ("gold/kpi_top_countries", "silver/netflix_titles"):
        event = lake.instance.get_latest_materialization_event(dg.AssetKey(name.split("/")))
        schema = event.asset_materialization.metadata["dagster/column_schema"].value
        assert {c.name: c.description for c in schema.columns} == columns.describe(name, schemas[name])
    # The contract's section is generated from the registry for exactly these tables.
    contract = (ROOT / "docs" / "data-contract.md").read_text()
    assert columns.contract_section(schemas) in contract, "run: python -m netflix_assets.lib.columns >> the contract's section"


def test_a_table_created_before_its_columns_were_described_gets_its_comments(spark, tmp_path):
    from netflix_assets.lib.delta import comment_columns, write_partitions

    uri = str(tmp_path / "t")
    day = dt.date(2026, 1, 1)
    frame = spark.createDataFrame([("s1", 90)], "show_id string, duration_minutes int").selectExpr("*", f"DATE'{day}' AS ingest_date")
    write_partitions(frame, uri, day, day + dt.timedelta(days=1))
    docs = columns.describe("gold/fact_title_added", frame.columns)
    assert comment_columns(spark, uri, docs) == ["show_id", "duration_minutes", "ingest_date"]
    assert comment_columns(spark, uri, docs) == []  # one commit, then nothing to do
    assert {f.name: f.metadata["comment"] for f in DeltaTable(uri).schema().fields} == docs


# --- the endpoint over the wire -----------------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def endpoint(tutorial_lake, tmp_path_factory):
    port, home = _free_port(), tmp_path_factory.mktemp("serving")
    proc = thrift_server.start(port, home)
    try:
        thrift_server.wait_ready(proc, port, home)
        yield SqlEndpointResource(port=port)
    finally:
        thrift_server.stop(proc)


def get_columns(endpoint: SqlEndpointResource, schema: str, table: str) -> list[str]:
    """The column names HiveServer2's GetColumns returns (the call JDBC/ODBC navigators make)."""
    from TCLIService import ttypes

    with endpoint.cursor() as cursor:
        connection = cursor._connection
        response = connection.client.GetColumns(
            ttypes.TGetColumnsReq(sessionHandle=connection._sessionHandle, schemaName=schema, tableName=table))
        cursor._operationHandle, cursor._state = response.operationHandle, cursor._STATE_RUNNING
        return [row[3] for row in cursor.fetchall()]  # COLUMN_NAME, as JDBC's getColumns


def beeline(endpoint: SqlEndpointResource, sql: str) -> list[list[str]]:
    """Rows of the last statement of `sql`, run by the wheel's beeline (JDBC) as a BI user would."""
    bin_dir = Path(sys.executable).parent
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    out = subprocess.run(
        [str(bin_dir / "beeline"), "-u", endpoint.url, "-n", "bi_user", "--silent=true", "--outputformat=tsv2",
         "--showHeader=false", "-e", sql],
        capture_output=True, text=True, env=env, timeout=300,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    # beeline echoes its prompt before the first row when its input is not a terminal.
    lines = [re.sub(r"^\d+: jdbc:hive2://\S+> ", "", line) for line in out.stdout.splitlines()]
    return [line.split("\t") for line in lines if line.strip()]


def test_make_serve_registers_the_lake_and_the_pipeline_keeps_it_current(tutorial_lake, endpoint):
    lake = tutorial_lake.lake
    # What `make serve` does on start: every table of the code location found in the lake.
    created = thrift_server.register_lake(endpoint.port, str(lake.root))
    assert sum(s.startswith("CREATE TABLE") for s in created) == 41
    # The pipeline's asset, run as any job runs it: nothing left to do, and it says so.
    result = dg.materialize(
        [lake.defs.get_assets_def(SQL_CATALOG)], partition_key=tutorial_lake.day, instance=lake.instance,
        resources={**{k: lake.defs.resources[k] for k in ("lake", JSON_IO_MANAGER_KEY)}, "sql_endpoint": endpoint},
    )
    metadata = result.asset_materializations_for_node("serving__sql_catalog")[0].metadata
    assert (metadata["tables"].value, metadata["registered"].value) == (41, "0 statement(s)")

    # Over JDBC: every gold table's row count equals the lake read by delta-rs, and a fact joins its dimension.
    gold = sorted(name.split("/")[1] for name in _lake_tables(lake.root) if name.startswith("gold/"))
    counts = " UNION ALL ".join(f"SELECT '{t}', count(*) FROM gold.{t}" for t in gold)
    served = {name: int(n) for name, n in beeline(endpoint, counts)}
    assert served == {t: len(DeltaTable(str(lake.root / "gold" / t)).to_pyarrow_table()) for t in gold}
    [[joined, movies]] = beeline(endpoint, (
        "SELECT count(*), sum(CASE WHEN d.type = 'Movie' THEN 1 ELSE 0 END) FROM gold.fact_title_added f "
        "JOIN gold.dim_title d ON f.title_key = d.title_key AND f.ingest_date = d.ingest_date"))
    fact = lake.rows("gold/fact_title_added")
    assert (int(joined), int(movies)) == (len(fact), sum(r["type"] == "Movie" for r in fact))
    # The ledger is served too, in bronze; the columns' descriptions are their comments over JDBC.
    assert beeline(endpoint, "SELECT count(*) FROM bronze.`_ingested_files`") == [[str(len(lake.ledger()))]]
    rows = beeline(endpoint, "DESCRIBE gold.kpi_top_countries")  # the columns, then "# Partition Information"
    described = {row[0]: row[2] for row in itertools.takewhile(lambda row: not row[0].startswith("#"), rows)}
    names = [f.name for f in DeltaTable(str(lake.root / "gold" / "kpi_top_countries")).schema().fields]
    assert {c: described[c] for c in names} == columns.describe("gold/kpi_top_countries", names)
    # HiveServer2's metadata call, as BI navigators list a table's columns (no column without the
    # server's catalog update setting: Delta leaves the metastore's schema empty).
    assert sorted(get_columns(endpoint, "gold", "kpi_top_countries")) == sorted(names)


def test_a_new_partition_is_visible_without_restarting_and_a_dropped_table_is_unregistered(spark, tutorial_lake, endpoint, tmp_path):
    from netflix_assets.lib.delta import write_partitions

    # A copy of one gold table (the session's lake is read-only for tests), registered beside the others.
    copy = tmp_path / "gold" / "kpi_rating_mix"
    shutil.copytree(tutorial_lake.lake.root / "gold" / "kpi_rating_mix", copy)
    with endpoint.cursor() as cursor:
        served = [Table(schema, name, location) for (schema, name), location in catalog.registered_tables(cursor).items()]
        assert len(served) == 41
        assert catalog.sync(cursor, [*served, Table("gold", "kpi_rating_mix_copy", str(copy))])[-1].startswith("CREATE TABLE")
    before = beeline(endpoint, "SELECT ingest_date, count(*) FROM gold.kpi_rating_mix_copy GROUP BY ingest_date")
    assert before == [[tutorial_lake.day, str(len(tutorial_lake.lake.rows("gold/kpi_rating_mix")))]]

    # The next day's partition, committed as the IO manager commits one, is read by the next query.
    next_day = dt.date.fromisoformat(tutorial_lake.day) + dt.timedelta(days=1)
    rows = spark.read.format("delta").load(str(copy)).where("rating = 'TV-MA'").selectExpr("* EXCEPT (ingest_date)", f"DATE'{next_day}' AS ingest_date")
    write_partitions(rows, str(copy), next_day, next_day + dt.timedelta(days=1))
    after = beeline(endpoint, "SELECT ingest_date, count(*) FROM gold.kpi_rating_mix_copy GROUP BY ingest_date ORDER BY ingest_date")
    assert after == [*before, [next_day.isoformat(), "2"]]

    # A column the code adds later: the sync registers the table again, and navigators list it.
    import pyarrow as pa
    from deltalake import write_deltalake

    added = DeltaTable(str(copy)).to_pyarrow_table().slice(0, 1)
    write_deltalake(str(copy), added.append_column("share_note", pa.array(["new"])), mode="append", schema_mode="merge")
    [table] = lake_tables(LakeResource(root=str(tmp_path)), [dg.AssetKey(["gold", "kpi_rating_mix"])])  # read as the sync reads it
    table = Table("gold", "kpi_rating_mix_copy", str(copy), table.columns)
    names = [name for name, _ in table.columns]
    with endpoint.cursor() as cursor:
        statements = catalog.sync(cursor, [*served, table])
    assert statements[-2:] == ["DROP TABLE IF EXISTS gold.`kpi_rating_mix_copy`",
                               f"CREATE TABLE IF NOT EXISTS gold.`kpi_rating_mix_copy` USING DELTA LOCATION '{copy}'"]
    assert sorted(get_columns(endpoint, "gold", "kpi_rating_mix_copy")) == sorted(names) and "share_note" in names
    with endpoint.cursor() as cursor:
        assert catalog.sync(cursor, [*served, table]) == []  # as registered now: names and types

    # A table no longer wanted (dropped or renamed in the code) is unregistered; its data stays.
    with endpoint.cursor() as cursor:
        statements = catalog.sync(cursor, [*served, Table("gold", "kpi_rating_mix_renamed", str(copy))])
    assert [s for s in statements if not s.startswith("CREATE SCHEMA")] == ["DROP TABLE IF EXISTS gold.`kpi_rating_mix_copy`",
                              f"CREATE TABLE IF NOT EXISTS gold.`kpi_rating_mix_renamed` USING DELTA LOCATION '{copy}'"]
    assert (copy / "_delta_log").is_dir()


def test_every_gold_materialization_carries_its_column_lineage_picture(tutorial_lake):
    instance = tutorial_lake.lake.instance
    for name in [n for n in _lake_tables(tutorial_lake.lake.root) if n.startswith("gold/")]:
        metadata = instance.get_latest_materialization_event(dg.AssetKey(name.split("/"))).asset_materialization.metadata
        picture = metadata["column_lineage_picture"].value
        assert picture.startswith(f"![column lineage of {name}](data:image/svg+xml;base64,"), name


def test_make_serve_leaves_no_server_behind_after_an_impatient_second_ctrl_c(tmp_path):
    """A server slow to stop (it ignores SIGTERM here): a second Ctrl-C while `make serve` waited for it
    cut the stop short of its SIGKILL, and the JVM kept the port. A stand-in server, no Spark."""
    import signal
    import time

    from netflix_assets.resources.spark_connect import free_port

    port = free_port()
    server = ("import signal, socket, sys, time; signal.signal(signal.SIGTERM, lambda *a: None); s = socket.socket(); "
              "s.bind(('127.0.0.1', int(sys.argv[1]))); s.listen(); time.sleep(600)")
    launcher = (
        "import sys; from netflix_assets.serving import thrift_server as ts; "
        f"ts.command = lambda port, home, driver_memory='2g': [sys.executable, '-c', {server!r}, str(port)]; "
        "ts.register_lake = lambda port, root: []; ts.stop.__defaults__ = (1.0,); "
        "sys.exit(ts.main(['--port', sys.argv[1], '--home', sys.argv[2]]))"
    )
    proc = subprocess.Popen([sys.executable, "-c", launcher, str(port), str(tmp_path)], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    for line in proc.stdout:
        if "ready" in line:
            break
    proc.send_signal(signal.SIGINT)
    time.sleep(0.3)
    proc.send_signal(signal.SIGINT)  # while `stop` waits for the server
    assert proc.wait(timeout=30) == 0
    deadline = time.monotonic() + 5
    while thrift_server.port_taken(port) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not thrift_server.port_taken(port), "the server outlived make serve"
