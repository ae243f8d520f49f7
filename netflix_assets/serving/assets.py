"""`serving/sql_catalog`: keeps the SQL endpoint's catalog equal to the lake's tables.

It depends on every table, so each job that writes tables ends with it, and a table added,
dropped or renamed in the code is registered or unregistered by the next run. New partitions
need nothing (`catalog.py`). Without an endpoint answering it only says so: the lake is built
either way, and `make serve` registers everything when it starts.
"""


from typing import Iterable, Sequence

import dagster as dg

from ..bronze.ledger import LEDGER_TABLE
from ..io_managers.json_records import JSON_IO_MANAGER_KEY
from ..partitions import daily_partitions
from ..resources.lake import LakeResource
from .catalog import SCHEMAS, Table, registered_catalog, served_elsewhere, sync

KEY = dg.AssetKey(["serving", "sql_catalog"])


def served_keys(keys: Iterable[dg.AssetKey]) -> list[dg.AssetKey]:
    """The Delta tables of the asset graph that the endpoint serves, plus the file ledger."""
    served = {key for key in keys if len(key.path) == 2 and key.path[0] in SCHEMAS}
    return sorted(served | {dg.AssetKey(["bronze", LEDGER_TABLE])}, key=lambda key: key.path)


def lake_tables(lake: LakeResource, keys: Sequence[dg.AssetKey]) -> list[Table]:
    """`keys` as tables over their lake paths, with their columns (name, type as Spark's schema tree
    names it: delta-rs's type names are the same), for those that exist as Delta tables yet (delta-rs
    reads each log: no Spark here; 41 small tables in 0.07 s)."""
    from deltalake import DeltaTable

    options = lake.storage_options() or None
    tables = []
    for key in keys:
        uri = lake.table_uri(*key.path)
        if DeltaTable.is_deltatable(uri, storage_options=options):  # written yet
            fields = DeltaTable(uri, storage_options=options).schema().fields
            tables.append(Table(key.path[0], key.path[1], uri, tuple((f.name, f.type.type) for f in fields)))
    return tables


def build_sql_catalog(keys: Iterable[dg.AssetKey]) -> dg.AssetsDefinition:
    served = served_keys(keys)
    upstream = [key for key in served if key.path[1] != LEDGER_TABLE]

    @dg.asset(
        key=KEY,
        deps=upstream,
        partitions_def=daily_partitions,
        group_name="serving",
        kinds={"sql"},
        description=(
            "Registers every bronze, silver, gold and quarantine Delta table (and the file ledger) as an "
            "external table of the SQL endpoint (`make serve`: Spark's Thrift JDBC/ODBC server), in a schema "
            "named after its layer: SELECT * FROM gold.kpi_top_countries. Skipped when no endpoint answers."
        ),
        required_resource_keys={"lake", "sql_endpoint"},
        # It returns no value, so nothing is stored; named so that no output is ever a pickle.
        io_manager_key=JSON_IO_MANAGER_KEY,
    )
    def sql_catalog(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        endpoint = context.resources.sql_endpoint
        if not endpoint.enabled:
            return dg.MaterializeResult(metadata={"registered": "no SQL endpoint in this deployment (DEPLOYMENT.md)"})
        tables = lake_tables(context.resources.lake, served)
        metadata = {"endpoint": endpoint.url, "tables": len(tables)}
        if not endpoint.answers():
            context.log.info(f"No SQL endpoint answers at {endpoint.url}: nothing registered (`make serve` registers the tables when it starts)")
            return dg.MaterializeResult(metadata={**metadata, "registered": "no endpoint answering"})
        root = context.resources.lake.root_uri
        with endpoint.cursor() as cursor:
            registered = registered_catalog(cursor)
            statements = sync(cursor, tables, root, registered=registered)
        elsewhere = served_elsewhere(tables, registered[0], root)
        if elsewhere:
            (schema, name), location = next(iter(elsewhere.items()))
            context.log.warning(
                f"{len(elsewhere)} table(s) the endpoint serves from another lake (e.g. {schema}.{name} at {location}) "
                f"left as they are: this run's lake is {root}. `make serve` on this lake serves it instead.")
        return dg.MaterializeResult(
            metadata={**metadata, "registered": f"{len(statements)} statement(s)",
                      "served_from_another_lake": len(elsewhere),
                      "ddl": dg.MetadataValue.md("\n".join(f"    {s}" for s in statements) or "up to date")}
        )

    return sql_catalog
