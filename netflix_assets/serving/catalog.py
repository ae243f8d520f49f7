"""The SQL endpoint's catalog: the lake's Delta tables registered as external tables.

Why external tables over the lake's paths, registered by DDL: the Delta log stays the one
truth. A table registered with `CREATE TABLE ... USING DELTA LOCATION` keeps no partition list
in the metastore; every query reads the log, so a partition the pipeline commits is visible at
once, with no refresh or server restart, and dropping a registration (`DROP TABLE` of an external
table) never deletes data. The metastore holds the table's columns as of its registration (the
Thrift server's `spark.databricks.delta.catalog.update.enabled`), which is where HiveServer2's
GetColumns reads them for Power BI's and DBeaver's navigators: `plan` registers a table again
when its columns change. Power BI's Spark connector, DBeaver, Tableau and `beeline` all see the
tables through HiveServer2's own catalog calls.

`sync` makes the catalog equal to a wanted list, idempotently: it creates the schemas, registers
the tables it lacks, re-registers a table whose location moved, and drops, in the schemas it
manages, any table the list no longer holds (a table dropped or renamed in the code). It runs
through any DB-API cursor on HiveServer2 (pyhive here; Databricks' SQL connector speaks the same
SQL), with no Dagster and no Spark in this process. Plain function, tested on a fake cursor.

What it owns: the external tables of SCHEMAS located under the lake root it is given. The endpoint
is open to BI users, so a table one of them creates there (a managed table: dropping it deletes
its data; an external table elsewhere) is never dropped. A wanted name registered under another
lake's root is left pointing there unless `take_over`: a run against another lake (a benchmark,
a demo with its own `NETFLIX_LAKE_URI`) must not re-point the tables BI users query, while
`make serve` starting on a lake takes the endpoint over.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterable, Mapping, Optional, Protocol, Sequence

# A lake layer is a schema of the same name: `gold.kpi_top_countries`, `quarantine.netflix_titles`.
SCHEMAS = ("bronze", "silver", "gold", "quarantine")


@dataclass(frozen=True)
class Table:
    schema: str
    name: str
    location: str  # the Delta table's URI (a local path or abfss://...)
    # Its columns now, (name, type) as Spark's schema tree prints them (empty: not compared).
    columns: tuple[tuple[str, str], ...] = ()

    @property
    def qualified(self) -> str:
        return f"{self.schema}.`{self.name}`"


class Cursor(Protocol):
    def execute(self, operation: str) -> object: ...

    def fetchall(self) -> list[tuple]: ...


def literal(text: str) -> str:
    """A Spark SQL string literal."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _strip(uri: str) -> str:
    # The metastore keeps `file:/x` for a local path `/x`.
    return re.sub(r"^file:(//)?", "", uri).rstrip("/")


def _same_location(registered: str, wanted: str) -> bool:
    return _strip(registered) == _strip(wanted)


def _under(location: str, root: Optional[str]) -> bool:
    return root is None or _strip(location).startswith(_strip(root) + "/")


def served_elsewhere(wanted: Sequence[Table], registered: Mapping[tuple[str, str], str],
                     lake_root: Optional[str]) -> dict[tuple[str, str], str]:
    """The wanted tables the endpoint serves from outside `lake_root` (another lake): key -> location."""
    keyed = {(t.schema, t.name): t for t in wanted}
    return {key: location for key, location in sorted(registered.items())
            if key in keyed and not _same_location(location, keyed[key].location) and not _under(location, lake_root)}


def plan(wanted: Sequence[Table], registered: Mapping[tuple[str, str], str], lake_root: Optional[str] = None,
         take_over: bool = False,
         registered_columns: Optional[Mapping[tuple[str, str], tuple[tuple[str, str], ...]]] = None) -> list[str]:
    """The DDL that makes the catalog's tables in SCHEMAS equal `wanted`.

    `registered`: (schema, table) -> location of the external tables the endpoint lists now;
    `lake_root`: only tables under it are this lake's to drop or re-point (None: all of them), and
    a wanted name served from elsewhere stays so unless `take_over`. `registered_columns`: the
    columns (names and types) each registration holds (`registered_catalog`; None: the endpoint
    stores none, nothing to compare); a table whose columns were added, removed or retyped since it
    was registered is registered again, its DROP right before its CREATE, so that tools listing
    columns see them. Returns [] when nothing differs, so a sync of an up-to-date catalog changes
    nothing."""
    statements = [f"CREATE SCHEMA IF NOT EXISTS {schema}" for schema in sorted({t.schema for t in wanted})]
    keyed = {(t.schema, t.name): t for t in wanted}
    kept = {} if take_over else served_elsewhere(wanted, registered, lake_root)

    def moved(key: tuple[str, str], location: str) -> bool:
        return not _same_location(location, keyed[key].location)

    def new_columns(key: tuple[str, str]) -> bool:
        table = keyed[key]
        return (registered_columns is not None and bool(table.columns)
                and sorted(registered_columns.get(key, ())) != sorted(table.columns))

    for (schema, name), location in sorted(registered.items()):
        key = (schema, name)
        if schema in SCHEMAS and key not in kept and (moved(key, location) if key in keyed else _under(location, lake_root)):
            statements.append(f"DROP TABLE IF EXISTS {schema}.`{name}`")
    for key, table in sorted(keyed.items()):
        location = registered.get(key)
        create = f"CREATE TABLE IF NOT EXISTS {table.qualified} USING DELTA LOCATION {literal(table.location)}"
        if key in kept:
            continue
        if location is None or moved(key, location):
            statements.append(create)
        elif new_columns(key):  # one table at a time: each is missing only between its two statements
            statements += [f"DROP TABLE IF EXISTS {table.qualified}", create]
    return statements if any(not s.startswith("CREATE SCHEMA") for s in statements) else []


_LOCATION = re.compile(r"^Location: (.+)$", re.MULTILINE)
_EXTERNAL = re.compile(r"^Type: EXTERNAL$", re.MULTILINE)
# The metastore's schema of the table (`Schema: root` then ` |-- name: type (nullable = ...)`,
# nested fields indented further); absent where the metastore holds none (a Delta table registered
# without `spark.databricks.delta.catalog.update.enabled`).
_SCHEMA = re.compile(r"^Schema: root\n((?: \|.*\n?)*)", re.MULTILINE)
_TOP_FIELD = re.compile(r"^ \|-- (.*): (\S+) \(nullable = (?:true|false)\)$", re.MULTILINE)
# The endpoint stores each Delta table's schema in its metastore when it registers it (thrift_server.py).
STORES_SCHEMAS = "spark.databricks.delta.catalog.update.enabled"


def registered_catalog(cursor: Cursor, schemas: Iterable[str] = SCHEMAS) -> tuple[
        dict[tuple[str, str], str], Optional[dict[tuple[str, str], tuple[tuple[str, str], ...]]]]:
    """(schema, table) -> location of the external tables registered in `schemas`, and -> the
    columns (name, type) the metastore holds for each (one query per schema), or None when the
    endpoint does not store them (a server started without `STORES_SCHEMAS`, another HiveServer2 on
    the port): registering again would then never settle. A managed table (a BI user's CREATE TABLE
    ... AS SELECT) is not listed: dropping it would delete its data."""
    cursor.execute(f"SET {STORES_SCHEMAS}")
    stores = any(str(row[-1]).strip().lower() == "true" for row in cursor.fetchall())
    cursor.execute("SHOW SCHEMAS")
    existing = {row[0] for row in cursor.fetchall()}
    found: dict[tuple[str, str], str] = {}
    columns: dict[tuple[str, str], tuple[str, ...]] = {}
    for schema in schemas:
        if schema not in existing:
            continue
        cursor.execute(f"SHOW TABLE EXTENDED IN {schema} LIKE '*'")
        for row in cursor.fetchall():
            # (namespace, tableName, isTemporary, information); a temporary view has no location.
            match = _LOCATION.search(row[3] or "")
            if not row[2] and match and _EXTERNAL.search(row[3]):
                found[(schema, row[1])] = match.group(1).strip()
                tree = _SCHEMA.search(row[3])
                columns[(schema, row[1])] = tuple(_TOP_FIELD.findall(tree.group(1))) if tree else ()
    return found, (columns if stores else None)


def registered_tables(cursor: Cursor, schemas: Iterable[str] = SCHEMAS) -> dict[tuple[str, str], str]:
    """(schema, table) -> location of the external tables registered in `schemas`."""
    return registered_catalog(cursor, schemas)[0]


def sync(cursor: Cursor, wanted: Sequence[Table], lake_root: Optional[str] = None, take_over: bool = False,
         registered: Optional[tuple[Mapping[tuple[str, str], str], Mapping[tuple[str, str], tuple[str, ...]]]] = None
         ) -> list[str]:
    """Make the endpoint's catalog equal `wanted` (see `plan`); returns the statements run ([] when
    it was). `registered`: the catalog as just listed (`registered_catalog`), else listed here."""
    locations, columns = registered_catalog(cursor) if registered is None else registered
    statements = plan(wanted, locations, lake_root, take_over, columns)
    for statement in statements:
        cursor.execute(statement)
    return statements
