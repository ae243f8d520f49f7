"""The landing-zone sensor (Auto Loader's file discovery) and the daily HTTP pull schedule."""

import datetime as dt
from typing import Optional

import dagster as dg
from dagster._core.storage.tags import RUN_KEY_TAG

from ..jobs import lakehouse_job, landed_titles_job
from ..lib import clock
from ..partitions import daily_partitions
from ..lib.delta import partition_row_counts
from ..resources.lake import LakeResource
from ..resources.landing import LandingZoneResource
from . import discovery, ledger_store
from ..transforms.formats import LOOKUPS
from .assets import bronze_netflix_titles
from .ledger import LEDGER_TABLE


def claimed_paths(lake: LakeResource, landing: LandingZoneResource) -> set[str]:
    """Paths in the ledger (absolute, under the landing zone's root), by the tick's own read with
    delta-rs (`ledger_store.read_for_sensor`: no Spark in the sensor process)."""
    return ledger_store.read_for_sensor(
        lake.table_uri("bronze", LEDGER_TABLE), landing.root_uri(), lake.storage_options()
    ).paths


def lookups_landed(lake: LakeResource, day: str) -> bool:
    """Whether all four bronze lookup tables hold partition `day` (read from their Delta logs
    with delta-rs). When in doubt (no table yet, an unreadable log), False."""
    date = dt.date.fromisoformat(day)
    for dataset in LOOKUPS:
        counts = partition_row_counts(lake.table_uri("bronze", dataset), lake.storage_options())
        if not counts or date not in counts:
            return False
    return True


def _innermost(error):
    while error is not None and error.cause is not None:
        error = error.cause
    return error


def failure_message(instance: dg.DagsterInstance, run_id: str) -> str:
    """The first step failure of a failed run, as one line ("<step>: <Error>: <message>"):
    what a batch's `failed` row says. Read only for runs that failed (a few event rows)."""
    try:
        for entry in instance.all_logs(run_id, of_type=dg.DagsterEventType.STEP_FAILURE):
            data = entry.dagster_event.event_specific_data
            user = getattr(data, "user_failure_data", None)
            error = _innermost(getattr(data, "error", None))
            text = (user.description if user is not None and user.description else None) or (
                error.message.strip() if error is not None else entry.message
            )
            return f"{entry.dagster_event.step_key}: {text}"
        for entry in instance.all_logs(run_id, of_type=dg.DagsterEventType.RUN_FAILURE):
            error = _innermost(getattr(entry.dagster_event.event_specific_data, "error", None))
            return error.message.strip() if error is not None else entry.message
    except Exception as err:  # noqa: BLE001 - the error text is a courtesy: never fail the tick for it
        return f"run {run_id} failed (its error could not be read: {err})"
    return f"run {run_id} failed"


def run_outcomes(instance: dg.DagsterInstance):
    """run_key -> RunOutcome of its latest run (None: no run yet), for `discovery.decide`."""

    def outcome(run_key: str) -> Optional[discovery.RunOutcome]:
        runs = instance.get_runs(filters=dg.RunsFilter(tags={RUN_KEY_TAG: run_key}), limit=1)
        if not runs:
            return None
        run = runs[0]
        status = run.status.value
        error = None
        if status == "FAILURE":
            error = failure_message(instance, run.run_id)
        elif status == "CANCELED":
            error = f"run {run.run_id} was canceled"
        return discovery.RunOutcome(status, run.run_id, error)

    return outcome


def run_statuses(instance: dg.DagsterInstance):
    """run_id -> its DagsterRunStatus value (None: unknown to the instance), for the runs of
    `claimed` rows (`discovery.decide` judges which are stranded)."""

    def status(run_id: str) -> Optional[str]:
        run = instance.get_run_by_id(run_id)
        return None if run is None else run.status.value

    return status


@dg.sensor(
    jobs=[landed_titles_job, lakehouse_job],
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description=(
        "Watches the landing zone and requests one run of today's partition per batch of new, "
        "complete titles files (each file exactly once: the ledger bronze/_ingested_files): "
        "landed_titles_job once the day's lookup pulls are in the lake, else the whole lakehouse_job. "
        "A batch whose run ends without recording its files is retried with backoff and split until a "
        "bad file is alone; that file is then recorded `failed` (re-queue it with `make requeue`). A file "
        "left `claimed` by a run that is gone (a stranded claim) is requested again for its own day."
    ),
)
def landing_zone_sensor(context: dg.SensorEvaluationContext, landing: LandingZoneResource, lake: LakeResource):
    landed, escaped = landing.scan()
    root = landing.root_uri()
    ledger_uri, options = lake.table_uri("bronze", LEDGER_TABLE), lake.storage_options()
    ledger = ledger_store.read_for_sensor(ledger_uri, root, options)
    now = clock.now()  # real time: file ages, backoffs; the day of new batches is clock.today()
    tick = discovery.decide(
        landed,
        escaped,
        ledger.paths,
        discovery.Cursor.parse(context.cursor),
        now,
        landing.settle_seconds,
        run_outcomes(context.instance),
        discovery.Limits.of(landing),
        open_claims=ledger.open_claims,
        claim_run_status=run_statuses(context.instance),
        today=clock.today(),
        first_day=daily_partitions.start.date(),
    )
    cursor, summary = _record_failed(context, tick, ledger_uri, root, options, now)
    (context.log.warning if tick.metrics.get("claims_before_first_partition") else context.log.info)(summary)
    run_requests = _run_requests(tick, lake)
    if ledger.fragmented:  # decided from the log read_for_sensor loaded: no second load on a tick
        _compact_ledger(context, ledger_uri, options)
    return dg.SensorResult(
        run_requests=run_requests,
        cursor=cursor.dump(),
        skip_reason=None if run_requests else dg.SkipReason(summary),
    )


def _record_failed(context, tick: discovery.Tick, ledger_uri: str, root: str, options, now: dt.datetime):
    """(the cursor, the tick's summary) once the files whose retries ran out are recorded `failed`."""
    cursor, summary = tick.cursor, tick.summary
    if tick.failed:
        try:
            cursor = discovery.recorded(cursor, ledger_store.record_failed(ledger_uri, tick.failed, root, options, now))
        except Exception as err:  # noqa: BLE001 - the batches stay in the cursor: written on the next tick
            context.log.warning(f"could not record {len(tick.failed)} failed file(s) in the ledger: {err!r}")
            summary += f"; recording failed files deferred ({type(err).__name__})"
    return cursor, summary


def _compact_ledger(context, ledger_uri: str, options) -> None:
    """Keep the ledger this sensor reads on every tick from growing a file per run (`ledger_store`)."""
    try:
        done = ledger_store.compact_if_fragmented(ledger_uri, options)
    except Exception as err:  # noqa: BLE001 - a run's MERGE won the race, or the store failed: next tick
        context.log.warning(f"compacting the ledger {ledger_uri} failed, to be tried again: {type(err).__name__}: {err}")
        return
    if done is not None:
        context.log.info(f"compacted the ledger: {done['files_removed']} data file(s) into {done['files_added']}")


def _run_requests(tick: discovery.Tick, lake: LakeResource) -> list[dg.RunRequest]:
    """One run per batch: `landed_titles_job` once its day's lookups are in the lake, else the whole job."""
    pulled = {day: lookups_landed(lake, day) for day in {r.partition_key for r in tick.requests}}
    return [
        dg.RunRequest(
            job_name=(landed_titles_job if pulled[request.partition_key] else lakehouse_job).name,
            run_key=request.run_key,
            partition_key=request.partition_key,
            run_config={"ops": {bronze_netflix_titles.op.name: {"config": {"files": request.files}}}},
            tags={"netflix/landed_files": str(len(request.files))},
        )
        for request in tick.requests
    ]


@dg.schedule(
    job=lakehouse_job,
    cron_schedule="0 6 * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description=(
        "Daily at 06:00 UTC: pull the four lookup files over HTTP (the ADF copy; unchanged "
        "content is not downloaded again) and rebuild today's partition."
    ),
)
def daily_lookup_pull(context: dg.ScheduleEvaluationContext):
    day = context.scheduled_execution_time.astimezone(dt.timezone.utc).date().isoformat()
    return dg.RunRequest(run_key=f"lookups-{day}", partition_key=day)


defs = dg.Definitions(sensors=[landing_zone_sensor], schedules=[daily_lookup_pull])
