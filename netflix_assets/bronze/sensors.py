"""The landing-zone sensor (Auto Loader's file discovery) and the daily HTTP pull schedule."""

import datetime as dt
from typing import Optional

import dagster as dg

from ..jobs import lakehouse_job, landed_titles_job
from ..lib.delta_log import partition_row_counts
from ..resources.lake import LakeResource
from ..resources.landing import LandingZoneResource
from . import discovery
from .assets import LOOKUP_FORMATS, bronze_netflix_titles
from .ledger import LEDGER_TABLE


def claimed_paths(lake: LakeResource) -> set[str]:
    """Paths in the ledger, read with delta-rs (no Spark in the sensor process)."""
    from deltalake import DeltaTable
    from deltalake.exceptions import TableNotFoundError

    try:
        table = DeltaTable(lake.table_uri("bronze", LEDGER_TABLE), storage_options=lake.storage_options())
    except TableNotFoundError:
        return set()
    return set(table.to_pyarrow_table(columns=["path"]).column("path").to_pylist())


def lookups_landed(lake: LakeResource, day: str) -> bool:
    """Whether all four bronze lookup tables hold partition `day` (read from their Delta logs
    with delta-rs). When in doubt (no table yet, an unreadable log), False."""
    date = dt.date.fromisoformat(day)
    for dataset in LOOKUP_FORMATS:
        counts = partition_row_counts(lake.table_uri("bronze", dataset), lake.storage_options())
        if not counts or date not in counts:
            return False
    return True


def _run_status(instance: dg.DagsterInstance):
    def status(run_key: str) -> Optional[str]:
        runs = instance.get_runs(filters=dg.RunsFilter(tags={"dagster/run_key": run_key}), limit=1)
        return runs[0].status.value if runs else None

    return status


@dg.sensor(
    jobs=[landed_titles_job, lakehouse_job],
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description=(
        "Watches the landing zone and requests one run of today's partition per batch of new, "
        "complete titles files (each file exactly once: the ledger bronze/_ingested_files): "
        "landed_titles_job once the day's lookup pulls are in the lake, else the whole lakehouse_job."
    ),
)
def landing_zone_sensor(context: dg.SensorEvaluationContext, landing: LandingZoneResource, lake: LakeResource):
    landed, escaped = landing.scan()
    tick = discovery.decide(
        landed,
        escaped,
        claimed_paths(lake),
        discovery.Cursor.parse(context.cursor),
        dt.datetime.now(dt.timezone.utc),
        landing.settle_seconds,
        _run_status(context.instance),
    )
    context.log.info(tick.summary)
    pulled = {day: lookups_landed(lake, day) for day in {r.partition_key for r in tick.requests}}
    run_requests = [
        dg.RunRequest(
            job_name=(landed_titles_job if pulled[request.partition_key] else lakehouse_job).name,
            run_key=request.run_key,
            partition_key=request.partition_key,
            run_config={"ops": {bronze_netflix_titles.op.name: {"config": {"files": request.files}}}},
            tags={"netflix/landed_files": str(len(request.files))},
        )
        for request in tick.requests
    ]
    return dg.SensorResult(
        run_requests=run_requests,
        cursor=tick.cursor.dump(),
        skip_reason=None if run_requests else dg.SkipReason(tick.summary),
    )


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
