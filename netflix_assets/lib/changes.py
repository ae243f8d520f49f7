"""A model table's partition maintained from its inputs' changes (`transforms.changes`: which
rows a change can move, and why recomputing those is exact).

What changed is read from the inputs' Delta change data feed (every gold table records one,
`lib.delta.CHANGE_FEED`), between the input versions the table's stored partition was built
from and the versions this run reads. Each materialization records those versions (and the
tables' Delta ids) in its metadata, `refreshed_from`; the next run uses them only while they
still describe the table:

- the table's latest commit is that materialization's (no other write since, whoever made it);
- every input is the same Delta table (same id) at that version or later.

Otherwise, and in every run not tagged `netflix/refresh=incremental` (a UI click, a backfill,
`netflix/refresh=full`), the partition is rebuilt whole; so it is too when the changed keys
outnumber `refresh.MAX_KEYS` or the partition is small (`refresh.MIN_ROWS`), where a rebuild
costs no more, or when the feed cannot be read (a version written before the table recorded its
changes, or removed by VACUUM): a rebuild is always exact, so any doubt costs time only.

The input versions are read before the inputs are: an input commit between the two would be
recomputed twice at worst. A commit to the same partition in between is not possible: runs of one
day do not overlap (the per-day run limit in both dagster.yaml files), and a run writes each
partition once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping, NamedTuple, Optional, Sequence

import dagster as dg

from ..transforms.changes import MAINTAINED, TITLE_KEY, Maintained, feed_rows
from .checks import TableReader
from .delta import PARTITION_COLUMN, TableState, change_feed, read_version, sql_in, table_state
from . import refresh
from .refresh import FULL_REFRESH, incremental_requested
from .tables import partition_date

if TYPE_CHECKING:
    import datetime as dt

    from pyspark.sql import DataFrame

# Materialization metadata: {"table": <the table's id>, "inputs": {"<layer>/<table>": {"id", "version"}}}.
REFRESHED_FROM_KEY = "refreshed_from"


class Maintenance(NamedTuple):
    """What a model table's run writes: `rows`, replacing the partition's rows matching `where`
    (None: the whole partition), and the materialization's metadata."""

    rows: "DataFrame"
    where: Optional[str]
    metadata: dict[str, Any]


def maintained(context: dg.AssetExecutionContext, table: str, **inputs: "DataFrame") -> Maintenance:
    """The rows model table `table` (`transforms.changes.MAINTAINED`) writes for the run's
    partition: the rule over `inputs` (the asset's inputs, by argument name), or, in an incremental
    run, the rows of the keys its inputs' changes touch, to replace those keys' rows."""
    rule = MAINTAINED[table]
    reader = TableReader(context.resources.spark, context.resources.lake)
    sources = {name: tuple(key.path) for name, key in context.assets_def.keys_by_input_name.items()}
    states = {name: table_state(reader.lake.table_uri(*key), reader.lake.storage_options()) for name, key in sources.items()}
    own = table_state(reader.lake.table_uri("gold", table), reader.lake.storage_options())
    recorded = {REFRESHED_FROM_KEY: dg.MetadataValue.json({
        "table": own.id if own else None,
        "version_before": own.version if own else None,
        "inputs": {"/".join(sources[n]): s._asdict() for n, s in states.items() if s is not None},
    })}
    keys = _changed_keys(context, reader, table, rule, sources, states, own) if incremental_requested(context) else None
    if keys is None:
        return Maintenance(rule.build(**inputs), None, {**FULL_REFRESH, **recorded})
    day = partition_date(context)
    current = {name: read_version(reader.session, reader.lake.table_uri(*sources[name]), states[name].version)
               .where(f"{PARTITION_COLUMN} = DATE'{day}'") for name in inputs}
    return Maintenance(rule.rebuild_of(current, keys), sql_in(rule.column, keys),
                       {"refresh": "incremental", "refresh_keys": len(keys), **recorded})


def _changed_keys(
    context: dg.AssetExecutionContext, reader: TableReader, table: str, rule: Maintained,
    sources: Mapping[str, Sequence[str]], states: Mapping[str, Optional[TableState]], own: Optional[TableState],
) -> Optional[list]:
    """The keys of `table` whose rows the inputs' changes since its stored partition can move;
    None: rebuild the partition (and the log says why)."""
    day = partition_date(context)
    previous = _previous(context, table)
    rows = reader.partition_rows(("gold", table), day)
    why = f"{rows} rows (a rebuild is cheaper below {refresh.MIN_ROWS})" if rows < refresh.MIN_ROWS or rows == 0 else (
        stale(sources, states, own, previous))
    if why is None:
        try:
            keys = _keys(reader, rule, sources, states, previous["inputs"], day)
        except Exception as err:  # noqa: BLE001 - an unreadable feed: a rebuild is exact
            keys, why = None, f"the inputs' changes could not be read ({type(err).__name__}: {str(err)[:300]})"
        else:
            if len(keys) > refresh.MAX_KEYS:
                keys, why = None, f"{len(keys)} changed keys (more than {refresh.MAX_KEYS})"
    if why is not None:
        context.log.info(f"gold/{table}[{day}]: rebuilt whole: {why}")
        return None
    context.log.info(f"gold/{table}[{day}]: {len(keys)} key(s) recomputed from the inputs' changes")
    return keys


def _previous(context: dg.AssetExecutionContext, table: str) -> Optional[dict[str, Any]]:
    """`refreshed_from` and the Delta version of the partition's latest materialization."""
    [record] = context.instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey(["gold", table]), asset_partitions=[context.partition_key]), limit=1
    ).records or [None]
    if record is None or record.asset_materialization is None:
        return None
    metadata = record.asset_materialization.metadata
    entry = metadata.get(REFRESHED_FROM_KEY)
    if entry is None:
        return None
    previous = dict(entry.value)
    written, table = metadata.get("delta_version"), metadata.get("delta_table_id")
    # A write that changed nothing commits nothing: the table then stayed at its version before.
    previous["version"] = written.value if written is not None else previous.get("version_before")
    if table is not None:  # the table's first write created it
        previous["table"] = table.value
    return previous


def stale(sources: Mapping[str, Sequence[str]], states: Mapping[str, Optional[TableState]], own: Optional[TableState],
          previous: Optional[Mapping[str, Any]]) -> Optional[str]:
    """Why a stored partition cannot be advanced by its inputs' changes, or None: `states` and `own`,
    the inputs' and the table's `TableState` now; `previous`, what its last materialization
    recorded (`_previous`)."""
    if own is None or None in states.values():
        return "a table's log is unreadable or missing"
    if previous is None:
        return "no materialization of the partition records its inputs' versions"
    if previous.get("table") != own.id or previous.get("version") != own.version:
        return "the table was written since its last materialization"
    inputs = previous.get("inputs") or {}
    for name, key in sources.items():
        before, state = inputs.get("/".join(key)), states[name]
        if before is None or before["id"] != state.id or before["version"] > state.version:
            return f"{'/'.join(key)} is not the table the partition was built from"
    return None


def _keys(reader: TableReader, rule: Maintained, sources, states, previous: Mapping[str, Any], day: "dt.date") -> list:
    """The changed keys, collected (one Spark job)."""
    changed = {}
    for name, key in sources.items():
        before, now = previous["/".join(key)]["version"], states[name].version
        if before < now:
            feed = change_feed(reader.session, reader.lake.table_uri(*key), before, now, day)
            changed[name] = feed_rows(feed, rule.reads[name])
    if not changed:
        return []
    ids = None
    if rule.column == TITLE_KEY:
        ids = read_version(reader.session, reader.lake.table_uri(*sources["ids"]), states["ids"].version).where(
            f"{PARTITION_COLUMN} = DATE'{day}'")
    return sorted(r["key"] for r in rule.keys_of(changed, ids).collect())

