"""Later days follow a change to an earlier day: the sensor that rebuilds the snapshots that
read an earlier partition before it changed.

Why: a gold table of day D is a snapshot as of D. It reads every partition <= D of its input
(`LOAD_AS_OF`: gold titles and lookups read silver, `dim_title_history` reads gold's daily
snapshots, and a keyed run of the history advances its own partition of the day before), while
Dagster's dependency stays D -> D, so lineage, the UI and the automation conditions follow D only.
When an earlier day's input changes (a file re-queued to its own day with `make requeue`, a past
day re-materialized from the UI, a batch of day D-1 still running after midnight beside day D's
first run), every later day already built misses the change: its titles keep the old version, or
lack the re-queued file's titles, until someone rebuilds it.

What: for each new materialization of an input read as of (day d, recorded at time t) and each
later day e whose reading step is built, that step is stale when its latest *full* rebuild of e
started before t. A keyed refresh (`lib.refresh`) does not count: it recomputes the show_ids that
day e's new files touch, not the ones an earlier day's change touched; a keyed refresh of d that
touched no key is no change. A stale step gets one run for its day e: the step and everything below
it, rebuilt whole (no refresh tag). The comparison is with the step's start, not its
materialization: a step that read before the change and committed after it is stale too (a run
of e beside a late run of d). Times, not storage ids: on SQLite each run's events are numbered in
the run's own database.

From when: a sensor without a cursor starts at the event log's present. What changed before its
first tick is not looked at (a new lake has no history; on an instance with one, set the cursor to
`{"after": 0}` with `dagster sensor cursor later_days --set` to go through it).

When: a change is decided once no run of its day or a later day is queued or in progress
(`partitions.days_with_runs_in_progress`), so a run that may still read or write what the
comparison looks at has ended and the changes of one run give one rebuild, and once it is
`SETTLE_SECONDS` old. Changes are taken in event-log order, and the cursor (the storage id decided
up to) never passes one that waits. Rebuilds run one at a time, oldest day first (`LATER_DAYS_TAG`,
limited to 1 in both dagster.yaml files): run side by side, day e+1's history would read day e's
`dim_title` before its rebuild committed, and need a second rebuild.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Callable, Iterable, Mapping, Optional, Sequence

import dagster as dg

from .io_managers.delta import LOAD_AS_OF, LOAD_MODE, READS_OWN_EARLIER_DAYS
from .lib.refresh import INCREMENTAL
from .partitions import days_with_runs_in_progress

SENSOR_NAME = "later_days"
JOB_NAME = "later_days_job"
CHANGED_DAYS_TAG = "netflix/changed_days"
# Materializations read per input and tick; more wait for the next tick (the cursor says where).
PAGE = 500
# A day's latest materializations searched for its latest full rebuild (a busy day's landed
# batches are keyed refreshes); none among them counts as stale, which costs a rebuild only.
SEARCHED = 20
# A change is decided once this old: a change recorded with a lower storage id can commit after one
# with a higher id is read (PostgreSQL), and the cursor must not pass it.
SETTLE_SECONDS = 15
# A tick decides changes for at most this long (each later day costs a few event-log reads), then
# leaves the rest to the next: a tick running past the daemon's timeout would never move the cursor.
TICK_BUDGET_SECONDS = 20
# Rebuilds run one at a time (both dagster.yaml files limit this tag), oldest day first: each reads
# the days before it once they are rebuilt, so a day's rebuild is not made stale by another's.
LATER_DAYS_TAG = "netflix/later_days"

Step = tuple[dg.AssetKey, ...]  # the keys one step materializes


@dataclass(frozen=True)
class Change:
    """A materialization of an input that a later day's step reads as of its day."""

    input_key: dg.AssetKey
    day: str
    storage_id: int  # where the cursor stands once it is decided
    timestamp: float  # when it was recorded, the input's commit done
    changed_rows: bool = True  # False: a keyed refresh that touched no key (its table is as it was)


@dataclass(frozen=True)
class Decision:
    rebuild: dict[str, set[Step]]  # day -> its stale steps
    changed_days: dict[str, set[str]]  # day -> the earlier days whose changes made it stale
    decided_to: Optional[int]  # the storage id of the last change decided (None: none)


def read_as_of(assets: Iterable) -> dict[dg.AssetKey, list[Step]]:
    """Each input read as of its day -> the steps reading it so: from the assets' `AssetIn` metadata,
    and an asset whose metadata says it reads its own earlier days (`READS_OWN_EARLIER_DAYS`)."""
    readers: dict[dg.AssetKey, list[Step]] = {}
    for asset in (a for a in assets if isinstance(a, dg.AssetsDefinition)):  # specs (external files) read nothing
        step = tuple(sorted(asset.keys, key=lambda k: k.to_user_string()))
        for name, key in getattr(asset, "keys_by_input_name", {}).items():
            if (asset.node_def.input_def_named(name).metadata or {}).get(LOAD_MODE) == LOAD_AS_OF:
                readers.setdefault(key, []).append(step)
        for key in asset.keys:
            if READS_OWN_EARLIER_DAYS in (asset.metadata_by_key.get(key) or {}):
                readers.setdefault(key, []).append(step)
    return readers


def decide(
    changes: Sequence[Change],
    busy_days: set[str],
    readers: Mapping[dg.AssetKey, Sequence[Step]],
    built_days: Callable[[Step], Iterable[str]],
    rebuilt_at: Callable[[Step, str], Optional[float]],
    settled_before: float = float("inf"),
    out_of_time: Callable[[], bool] = lambda: False,
) -> Decision:
    """The stale (day, step) pairs the changes make, in event-log order, up to the first change
    that must wait: for a run of its day or a later one, or because it was recorded after
    `settled_before`; or until `out_of_time()`. `built_days(step)`: the days the step has
    materialized; `rebuilt_at(step, day)`: when its latest full rebuild of that day started (None:
    there is none among the latest)."""
    rebuild: dict[str, set[Step]] = {}
    changed: dict[str, set[str]] = {}
    decided_to = None
    for change in sorted(changes, key=lambda c: c.storage_id):
        if change.timestamp > settled_before or any(day >= change.day for day in busy_days):
            break
        if decided_to is not None and out_of_time():
            break
        for step in readers.get(change.input_key, ()) if change.changed_rows else ():
            for day in built_days(step):
                if day > change.day and (rebuilt_at(step, day) or 0) <= change.timestamp:
                    rebuild.setdefault(day, set()).add(step)
                    changed.setdefault(day, set()).add(change.day)
        decided_to = change.storage_id
    return Decision(rebuild, changed, decided_to)


class _EventLog:
    """`decide`'s views of the instance's event log, each read once per tick."""

    def __init__(self, instance: dg.DagsterInstance):
        self.instance = instance
        self._built: dict[Step, set[str]] = {}
        self._rebuilt: dict[tuple[Step, str], Optional[float]] = {}
        self._starts: dict[str, dict[str, float]] = {}  # run id -> step key -> its latest start

    def latest(self, inputs: Iterable[dg.AssetKey]) -> int:
        """The storage id of the inputs' latest materialization (0: none yet)."""
        pages = [self.instance.fetch_materializations(key, limit=1).records for key in inputs]
        return max((page[0].storage_id for page in pages if page), default=0)

    def changes(self, inputs: Iterable[dg.AssetKey], after: int) -> list[Change]:
        """New materializations of `inputs`, up to where every input's page is complete."""
        found, horizon = [], None
        for key in inputs:
            page = self.instance.fetch_materializations(
                dg.AssetRecordsFilter(asset_key=key, after_storage_id=after), limit=PAGE, ascending=True
            )
            found += [Change(key, r.partition_key, r.storage_id, r.timestamp, _changed_rows(r)) for r in page.records
                      if r.partition_key]
            if page.has_more and page.records:
                horizon = min(horizon or page.records[-1].storage_id, page.records[-1].storage_id)
        return [c for c in found if horizon is None or c.storage_id <= horizon]

    def built_days(self, step: Step) -> set[str]:
        if step not in self._built:
            self._built[step] = {
                day for key in step
                for day in self.instance.get_latest_storage_id_by_partition(key, dg.DagsterEventType.ASSET_MATERIALIZATION)
            }
        return self._built[step]

    def rebuilt_at(self, step: Step, day: str) -> Optional[float]:
        """The oldest of its keys' latest full rebuilds (a run may have selected one output of a step)."""
        if (step, day) not in self._rebuilt:
            starts = [self._latest_full_rebuild_start(key, day) for key in step]
            self._rebuilt[step, day] = None if None in starts else min(starts)
        return self._rebuilt[step, day]

    def _latest_full_rebuild_start(self, key: dg.AssetKey, day: str) -> Optional[float]:
        page = self.instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=key, asset_partitions=[day]), limit=SEARCHED
        )
        for record in page.records:  # newest first
            refresh = record.asset_materialization.metadata.get("refresh")
            if refresh is not None and refresh.value == INCREMENTAL:
                continue
            # No start recorded (a materialization reported outside a run): as old as it can be.
            return self._step_starts(record.run_id).get(record.event_log_entry.step_key)
        return None

    def _step_starts(self, run_id: str) -> dict[str, float]:
        # Times, not storage ids: on SQLite a run's events have ids of their own run's database.
        if run_id not in self._starts:
            starts: dict[str, float] = {}
            for event in self.instance.get_records_for_run(run_id, of_type=dg.DagsterEventType.STEP_START).records:
                step_key = event.event_log_entry.step_key
                starts[step_key] = max(starts.get(step_key, 0.0), event.timestamp)  # a retried step: its last start
            self._starts[run_id] = starts
        return self._starts[run_id]


def _changed_rows(record) -> bool:
    """False for a keyed refresh that touched no key: its table holds what it held."""
    meta = record.asset_materialization.metadata if record.asset_materialization else {}
    refresh, keys = meta.get("refresh"), meta.get("refresh_keys")
    return not (refresh is not None and refresh.value == INCREMENTAL and keys is not None and keys.value == 0)


def build(assets: Sequence) -> dg.Definitions:
    """The job and the sensor over `assets` (every asset of the code location that a rebuild may select)."""
    assets = [a for a in assets if isinstance(a, dg.AssetsDefinition)]
    readers = read_as_of(assets)
    steps = sorted({step for found in readers.values() for step in found})
    below = {step: dg.AssetSelection.assets(*step).downstream().resolve(assets) for step in steps}
    job = dg.define_asset_job(
        JOB_NAME,
        selection=dg.AssetSelection.assets(*(key for step in steps for key in step)).downstream(),
        description=(
            "Snapshots of one day rebuilt whole after an earlier day they read changed (the later_days sensor "
            "requests it with the stale steps and what is below them selected)."
        ),
    )

    @dg.sensor(
        job=job,
        name=SENSOR_NAME,
        minimum_interval_seconds=60,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=(
            "When a partition that later days read as of their day changes (a re-queued file of an earlier day, a "
            "past day re-run), rebuilds those later days' snapshots: the stale steps and what is below them, one "
            "run per day, once no run of the changed day or a later one is in progress."
        ),
    )
    def later_days(context: dg.SensorEvaluationContext):
        log = _EventLog(context.instance)
        if not context.cursor:
            now = log.latest(readers)
            context.log.info(f"first tick: changes recorded after storage id {now} will be looked at")
            return dg.SensorResult(cursor=json.dumps({"after": now}), skip_reason=dg.SkipReason("started"))
        after = int(json.loads(context.cursor)["after"])
        changes = log.changes(readers, after)
        if not changes:
            return dg.SkipReason("no input read as of its day has changed")
        deadline = time.monotonic() + TICK_BUDGET_SECONDS
        decision = decide(changes, days_with_runs_in_progress(context.instance), readers, log.built_days, log.rebuilt_at,
                          settled_before=time.time() - SETTLE_SECONDS, out_of_time=lambda: time.monotonic() > deadline)
        requests = [
            dg.RunRequest(
                run_key=f"{day}@{decision.decided_to}",
                partition_key=day,
                asset_selection=sorted(set().union(*(below[step] for step in stale)), key=lambda k: k.to_user_string()),
                tags={CHANGED_DAYS_TAG: ",".join(sorted(decision.changed_days[day])), LATER_DAYS_TAG: "rebuild"},
            )
            for day, stale in sorted(decision.rebuild.items())
        ]
        waiting = len([c for c in changes if decision.decided_to is None or c.storage_id > decision.decided_to])
        summary = (f"{len(changes) - waiting} change(s) decided, {len(requests)} later day(s) to rebuild"
                   + (f", {waiting} waiting (a run of their day or a later one, a change just recorded, the tick's "
                      "time)" if waiting else ""))
        context.log.info(summary)
        cursor = json.dumps({"after": decision.decided_to if decision.decided_to is not None else after})
        return dg.SensorResult(run_requests=requests, cursor=cursor, skip_reason=None if requests else dg.SkipReason(summary))

    return dg.Definitions(jobs=[job], sensors=[later_days])

