"""The gold model's tables maintained from their inputs' changes (`transforms/maintain.py`) in a
run that asks for a refresh (`netflix/refresh=incremental`, the landing-zone sensor's runs), and
rebuilt by every other run. Why this is exact, and stays exact when runs stop or overlap:

- Every write of a model table reads its inputs pinned at their current Delta versions and notes
  those versions in its own commit (`lib.delta.write_partitions(inputs=...)`). So the latest
  commit that wrote a partition says exactly what its rows were computed from: a crash cannot
  separate the note from the rows (one commit), and a commit that cannot say (another writer, a
  table written before the note existed) makes the next run rebuild.
- What changed since then is read from the inputs' change data feed (on for every gold table):
  the partition's rows lost and gained over every commit in between, however many runs made them.
- A rule recomputes the rows a change can affect from the inputs as they are now; it never adds a
  difference to a stored value. So a change seen twice (two runs racing, the later commit noting
  the older versions) costs time, never correctness; a change cannot be missed, because the noted
  versions are the ones the written rows were read from.
- A table a change does not reach gets no commit (Delta commits no empty write), so its note
  stays where it was and the next run reads those changes again: time, not correctness, and a
  rebuild past `MAX_CHANGED_ROWS` bounds it.
- A rebuild instead when the catalogue's partition is small (`refresh.MIN_ROWS`: below it a
  rebuild costs no more than the rules' own Spark jobs; BENCHMARKS.md) or the change is large
  (`MAX_CHANGED_ROWS` input rows lost or gained: the affected keys become literal replace
  predicates, and a rebuild's work is near). A run not asking for a refresh always rebuilds.
"""

from __future__ import annotations

import dataclasses
from functools import reduce
from typing import Callable, Mapping, Optional, Sequence

import dagster as dg
from pyspark.errors import PySparkException
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from ..io_managers.delta import Pinned, Replace
from ..lib import refresh
from ..lib.checks import TableReader
from ..lib.delta import PARTITION_COLUMN, changes_between, read_version, recorded_inputs, table_version
from ..lib.tables import partition_date
from ..transforms import maintain as m

MAX_CHANGED_ROWS = refresh.MAX_KEYS
MAINTAINED = "maintained"  # the `refresh` metadata value of a table maintained from changes


def table_key(name: str) -> tuple[str, str]:
    """The asset key of a table `transforms.maintain` names (the gold snapshots by short names)."""
    return ("gold", f"netflix_{name}") if name in m.SNAPSHOT else ("gold", name)


@dataclasses.dataclass(frozen=True)
class Written:
    """What an asset hands its IO manager (`value`), its table as it will be once written (what
    a chart reads), the materialization's metadata, and what to unpersist after the write."""

    value: Pinned
    table: DataFrame
    metadata: dict
    held: tuple[DataFrame, ...] = ()


def outputs(context: dg.AssetExecutionContext, names: Sequence[str], ins: Mapping[str, Sequence[str]],
            build: Callable[..., Mapping[str, DataFrame]]) -> dict[str, Written]:
    """Tables `names` (outputs of one rule of `transforms.maintain`) for the run's partition:
    maintained from their inputs' changes when the run asks for a refresh and the tables can say
    what they were computed from, else rebuilt by `build(**inputs)` -> {name: DataFrame}.
    `ins`: {argument of `build`: input table key}; every input is read at one pinned version."""
    reader = TableReader(context.resources.spark, context.resources.lake)
    day = partition_date(context)
    keys = {arg: tuple(key) for arg, key in ins.items()}
    versions = {key: _version(reader, key) for key in set(keys.values())}
    frames = {key: read_version(reader.session, reader.lake.table_uri(*key), version)
              .where(F.col(PARTITION_COLUMN) == F.lit(day)) for key, version in versions.items()}
    noted = {"/".join(key): version for key, version in versions.items()}
    maintained = _maintain(context, reader, names, versions, frames) if refresh.incremental_requested(context) else None
    if maintained is None:
        built = build(**{arg: frames[key] for arg, key in keys.items()})
        return {name: Written(Pinned(built[name], noted), built[name], dict(refresh.FULL_REFRESH)) for name in names}
    replacements, stored = maintained
    written = {}
    for name in names:
        replacement = replacements.get(name, m.Replacement(stored[name].limit(0), "FALSE"))
        whole = replacement.where == m.WHOLE
        value = replacement.rows if whole else Replace(replacement.rows, replacement.where)
        written[name] = Written(Pinned(value, noted), replacement.applied_to(stored[name]),
                                {"refresh": MAINTAINED, "refresh_replaced": "partition" if whole else
                                 ("nothing" if name not in replacements else "the changed rows")}, replacement.held)
    return written


def _version(reader: TableReader, key: tuple[str, ...]) -> int:
    try:
        return table_version(reader.session, reader.lake.table_uri(*key), reader.lake.storage_options())
    except Exception:  # noqa: BLE001 - re-raised unless the table is missing
        reader.table(key)  # no table: a Failure that says to materialize it first
        raise


def _maintain(context: dg.AssetExecutionContext, reader: TableReader, names: Sequence[str],
              versions: Mapping[tuple, int], frames: Mapping[tuple, DataFrame],
              ) -> Optional[tuple[dict[str, m.Replacement], dict[str, DataFrame]]]:
    """The rule's replacements of `names` from its inputs' changes since their last write, and
    their partitions as stored; or None (with the reason logged) for a rebuild."""
    rule, day = m.RULE_OF[names[0]], partition_date(context)
    session, options = reader.session, reader.lake.storage_options()

    def rebuild(why: str) -> None:
        context.log.info(f"{', '.join(names)}[{day}]: rebuilt, not maintained: {why}")

    titles = reader.partition_rows(table_key("titles"), day)
    if titles < refresh.MIN_ROWS:
        return rebuild(f"{titles} titles, below the {refresh.MIN_ROWS} where maintaining pays")
    notes = [recorded_inputs(session, reader.lake.table_uri(*table_key(name)), day, options) for name in names]
    changes = {}
    for name in rule.inputs:
        key = table_key(name)
        label, now = "/".join(key), versions[key]
        since = min((note or {}).get(label, -1) for note in notes)
        if since < 0 or since > now:
            return rebuild(f"its last write did not note the version of {label} it read")
        if since == now:
            continue
        change = changes_between(session, reader.lake.table_uri(*key), since, now, F.col(PARTITION_COLUMN) == F.lit(day))
        if change is None:
            return rebuild(f"{label}'s change data feed refuses its versions {since + 1}-{now}")
        changes[name] = m.Change(*change)
    stored = {name: reader.partition(table_key(name), day) for name in names}
    if not changes:
        return {}, stored
    sides = [df.select(F.lit(1).alias("n")) for change in changes.values() for df in (change.removed, change.added)]
    try:  # the first action over the feeds: a range a feed did not record fails here
        changed = reduce(DataFrame.unionByName, sides).count()
    except PySparkException as err:
        return rebuild(f"the change data feed of {', '.join(changes)} cannot say what changed "
                       f"({err.getCondition() or type(err).__name__})")
    if changed > MAX_CHANGED_ROWS:
        return rebuild(f"{changed} input rows lost or gained, more than {MAX_CHANGED_ROWS}")
    context.log.info(f"{', '.join(names)}[{day}]: maintained from {changed} changed rows of {', '.join(changes)}")
    return rule.maintain(changes, {**{name: frames[table_key(name)] for name in rule.inputs}, **stored}), stored
