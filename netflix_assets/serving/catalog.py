"""The SQL endpoint's catalog: the lake's Delta tables registered as external tables.

Why external tables over the lake's paths, registered by DDL: the Delta log stays the one
truth. A table registered with `CREATE TABLE ... USING DELTA LOCATION` keeps no schema or
partition list in the metastore; every query reads the log, so a partition the pipeline
commits is visible at once, with no refresh or server restart, and dropping a registration
(`DROP TABLE` of an external table) never deletes data. Power BI's Spark connector, DBeaver,
Tableau and `beeline` all see the tables through HiveServer2's own catalog calls.

`sync` makes the catalog equal to a wanted list, idempotently: it creates the schemas, registers
the tables it lacks, re-registers a table whose location moved, and drops, in the schemas it
manages, any table the list no longer holds (a table dropped or renamed in the code). It runs
through any DB-API cursor on HiveServer2 (pyhive here; Databricks' SQL connector speaks the same
SQL), with no Dagster and no Spark in this process. Plain function, tested on a fake cursor.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterable, Mapping, Protocol, Sequence

# A lake layer is a schema of the same name: `gold.kpi_top_countries`, `quarantine.netflix_titles`.
SCHEMAS = ("bronze", "silver", "gold", "quarantine")


@dataclass(frozen=True)
class Table:
    schema: str
    name: str
    location: str  # the Delta table's URI (a local path or abfss://...)

    @property
    def qualified(self) -> str:
        return f"{self.schema}.`{self.name}`"


class Cursor(Protocol):
    def execute(self, operation: str) -> object: ...

    def fetchall(self) -> list[tuple]: ...


def literal(text: str) -> str:
    """A Spark SQL string literal."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _same_location(registered: str, wanted: str) -> bool:
    # The metastore keeps `file:/x` for a local path `/x`.
    strip = lambda uri: re.sub(r"^file:(//)?", "", uri).rstrip("/")  # noqa: E731
    return strip(registered) == strip(wanted)


def plan(wanted: Sequence[Table], registered: Mapping[tuple[str, str], str]) -> list[str]:
    """The DDL that makes the catalog's tables in SCHEMAS equal `wanted`.

    `registered`: (schema, table) -> location, as the endpoint lists them now. Returns []
    when nothing differs, so a sync of an up-to-date catalog changes nothing."""
    statements = [f"CREATE SCHEMA IF NOT EXISTS {schema}" for schema in sorted({t.schema for t in wanted})]
    keyed = {(t.schema, t.name): t for t in wanted}
    for (schema, name), location in sorted(registered.items()):
        table = keyed.get((schema, name))
        if schema in SCHEMAS and (table is None or not _same_location(location, table.location)):
            statements.append(f"DROP TABLE IF EXISTS {schema}.`{name}`")
    for key, table in sorted(keyed.items()):
        location = registered.get(key)
        if location is None or not _same_location(location, table.location):
            statements.append(f"CREATE TABLE IF NOT EXISTS {table.qualified} USING DELTA LOCATION {literal(table.location)}")
    return statements if any(not s.startswith("CREATE SCHEMA") for s in statements) else []


_LOCATION = re.compile(r"^Location: (.+)$", re.MULTILINE)


def registered_tables(cursor: Cursor, schemas: Iterable[str] = SCHEMAS) -> dict[tuple[str, str], str]:
    """(schema, table) -> location of the tables registered in `schemas` (one query per schema)."""
    cursor.execute("SHOW SCHEMAS")
    existing = {row[0] for row in cursor.fetchall()}
    found: dict[tuple[str, str], str] = {}
    for schema in schemas:
        if schema not in existing:
            continue
        cursor.execute(f"SHOW TABLE EXTENDED IN {schema} LIKE '*'")
        for row in cursor.fetchall():
            # (namespace, tableName, isTemporary, information); a temporary view has no location.
            match = _LOCATION.search(row[3] or "")
            if not row[2] and match:
                found[(schema, row[1])] = match.group(1).strip()
    return found


def sync(cursor: Cursor, wanted: Sequence[Table]) -> list[str]:
    """Make the endpoint's catalog equal `wanted`; returns the statements run ([] when it was)."""
    statements = plan(wanted, registered_tables(cursor))
    for statement in statements:
        cursor.execute(statement)
    return statements
