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

When: a change is decided once no run of its own day is queued or in progress (the changes of
one run give one rebuild), nor a run of a later day that rebuilds it whole (it may read the change,
making a rebuild needless; a keyed run of a later day, the landing sensor's, is not waited for:
it would not make that day fresh, and the per-day run limit queues the rebuild behind it), and
once it is `SETTLE_SECONDS` old. Changes are taken in event-log order, and the cursor (the storage
id decided up to) never passes one that waits; the tick's log says why the first one waits. Each
change is decided whole, its later days' reads included (about ten event-log queries per later
day), then the tick stops once `TICK_BUDGET_SECONDS` are spent.

Rebuilds run one at a time (`LATER_DAYS_TAG`, limited to 1 in both dagster.yaml files), in the
order requested, oldest day first, unless a run of a day holds its rebuild back (Dagster's queue
then starts the next one). Run side by side, day e+1's history would read day e's `dim_title`
before its rebuild committed, and need a second rebuild; out of order, it does need one.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Callable, Iterable, Mapping, Optional, Sequence

import dagster as dg

from .io_managers.delta import LOAD_AS_OF, LOAD_MODE, READS_OWN_EARLIER_DAYS
from .lib.refresh import INCREMENTAL, REFRESH_TAG
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
# A tick decides no new change after this long (each later day costs about ten event-log reads),
# leaving the rest to the next: a tick running past the daemon's timeout would never move the cursor.
TICK_BUDGET_SECONDS = 20
# Rebuilds run one at a time (both dagster.yaml files limit this tag), in the order requested (oldest
# day first): each reads the days before it once they are rebuilt.
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
    waiting: str = ""  # why the first change not decided waits


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
    rebuilding_days: set[str],
    readers: Mapping[dg.AssetKey, Sequence[Step]],
    built_days: Callable[[Step], Iterable[str]],
    rebuilt_at: Callable[[Step, str], Optional[float]],
    settled_before: float = float("inf"),
    out_of_time: Callable[[], bool] = lambda: False,
) -> Decision:
    """The stale (day, step) pairs the changes make, in event-log order, up to the first change
    that must wait: for a run of its day (`busy_days`), for a run of a later day that rebuilds it
    whole (`rebuilding_days`: it may read the change, or have read before it and commit after),
    or because it was recorded after `settled_before`; or until `out_of_time()` between two
    changes (the first one is always decided). `built_days(step)`: the days the step has
    materialized; `rebuilt_at(step, day)`: when its latest full rebuild of that day started (None:
    there is none among the latest)."""
    rebuild: dict[str, set[Step]] = {}
    changed: dict[str, set[str]] = {}
    decided_to = None
    waiting = ""
    for change in sorted(changes, key=lambda c: c.storage_id):
        later = sorted(day for day in rebuilding_days if day > change.day)
        if change.day in busy_days:
            waiting = f"a run of {change.day}, the day changed, is queued or in progress"
        elif later:
            waiting = f"a run rebuilding {', '.join(later[:3])}{' ...' if len(later) > 3 else ''} is queued or in progress"
        elif change.timestamp > settled_before:
            waiting = f"recorded less than {SETTLE_SECONDS} s ago"
        elif decided_to is not None and out_of_time():
            waiting = f"this tick's {TICK_BUDGET_SECONDS} s are spent"
        if waiting:
            waiting = f"the change of {change.day} (and any after it) waits: {waiting}"
            break
        for step in readers.get(change.input_key, ()) if change.changed_rows else ():
            for day in built_days(step):
                if day > change.day and (rebuilt_at(step, day) or 0) <= change.timestamp:
                    rebuild.setdefault(day, set()).add(step)
                    changed.setdefault(day, set()).add(change.day)
        decided_to = change.storage_id
    return Decision(rebuild, changed, decided_to, waiting)


class _EventLog:
    """`decide`'s views of the instance's event log, each read once per tick."""

    def __init__(self, instance: dg.DagsterInstance):
        self.instance = instance
        self._built: dict[Step, set[str]] = {}
        self._rebuilt: dict[tuple[Step, str], Optional[float]] = {}
        self._starts: dict[str, dict[str, list[float]]] = {}  # run id -> step key -> its starts

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
            # The step's last start before it (a retried step started again); none (a materialization
            # reported outside a run): as old as it can be.
            starts = [t for t in self._step_starts(record.run_id).get(record.event_log_entry.step_key, ())
                      if t <= record.timestamp]
            return max(starts) if starts else None
        return None

    def _step_starts(self, run_id: str) -> dict[str, list[float]]:
        # Times, not storage ids: on SQLite a run's events have ids of their own run's database.
        if run_id not in self._starts:
            starts: dict[str, list[float]] = {}
            for event in self.instance.get_records_for_run(run_id, of_type=dg.DagsterEventType.STEP_START).records:
                starts.setdefault(event.event_log_entry.step_key, []).append(event.timestamp)
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
            "run per day, one at a time, once the runs of the changed day and any whole rebuild of a later day "
            "have ended."
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
        decision = decide(changes, days_with_runs_in_progress(context.instance),
                          days_with_runs_in_progress(context.instance, ignored={REFRESH_TAG: INCREMENTAL}),
                          readers, log.built_days, log.rebuilt_at,
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
                   + (f"; {waiting} waiting: {decision.waiting}" if waiting else ""))
        context.log.info(summary)
        cursor = json.dumps({"after": decision.decided_to if decision.decided_to is not None else after})
        return dg.SensorResult(run_requests=requests, cursor=cursor, skip_reason=None if requests else dg.SkipReason(summary))

    return dg.Definitions(jobs=[job], sensors=[later_days])

