"""Jobs and automation over the asset graph."""

import datetime as dt

import dagster as dg

from .bronze.assets import bronze_netflix_titles, landing_zone
from .lib.checks import CHECKS_TAG, FULL
from .lib.refresh import INCREMENTAL, REFRESH_TAG

# Everything Dagster can materialize for one ingest_date (the landing zone is external).
all_tables = dg.AssetSelection.all() - dg.AssetSelection.assets(landing_zone.key)

lakehouse_job = dg.define_asset_job(
    "lakehouse_job",
    selection=all_tables,
    description=(
        "Materialize every table of the lakehouse for one ingest_date, with its checks (the lookup pulls and "
        "their bronze, silver and gold tables included: more assets and checks than landed_titles_job)."
    ),
)

# A batch of landed titles files changes bronze titles and what is built from it, not the
# day's lookup pulls: the landing-zone sensor runs this job once the day's pulls are in the
# lake (saves the HTTP pulls, four bronze tables and their checks on every file).
# Its runs refresh existing partitions incrementally (`lib.refresh`): silver and gold
# recompute only the show_ids the new files touch. Tag a run `netflix/refresh=full` to rebuild.
landed_titles_job = dg.define_asset_job(
    "landed_titles_job",
    selection=dg.AssetSelection.assets(*bronze_netflix_titles.keys).downstream(),
    description=(
        "A batch of landed titles files for one ingest_date: bronze titles and everything built from it "
        "(silver, gold, checks). The day's lookup pulls are read from the lake, not pulled again; existing "
        "silver and gold partitions are refreshed for the show_ids the new files touch. Fewer assets, so fewer "
        "checks, than lakehouse_job: the sensor runs this job once the day's lookups are in the lake."
    ),
    tags={REFRESH_TAG: INCREMENTAL},
)

# Declarative Automation: silver and gold assets carry `automation.FOLLOW_UPSTREAM`, so
# when a partition of their inputs is materialized on its own (a backfill, a UI click),
# the layers below follow. The sensor that evaluates those conditions, on by default:
follow_upstream = dg.AutomationConditionSensorDefinition(
    "follow_upstream",
    target=all_tables,
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=60,
    description="Materializes silver/gold partitions whose inputs changed (their eager automation conditions).",
)

# A check step trusts the values its table's latest write recorded (`lib.checks`); this job queries
# every table instead. A job of checks alone takes no partitions definition from an asset: its run
# names the day with the `dagster/partition` tag, as the schedule below does.
table_checks_job = dg.define_asset_job(
    "table_checks_job",
    selection=dg.AssetSelection.all_asset_checks(),
    description=(
        "Every asset check of one ingest_date (tag dagster/partition=YYYY-MM-DD), each computed by a query "
        "of its table: none trusts the values a write recorded (tag netflix/checks=full)."
    ),
    tags={CHECKS_TAG: FULL},
)


@dg.schedule(
    job=table_checks_job,
    cron_schedule="0 4 * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description=(
        "Daily at 04:00 UTC: the checks of yesterday's partition, each by a query of its table, for the "
        "tables that partition has (none: skipped)."
    ),
)
def daily_full_checks(context: dg.ScheduleEvaluationContext):
    day = (context.scheduled_execution_time.astimezone(dt.timezone.utc).date() - dt.timedelta(days=1)).isoformat()
    graph = context.repository_def.asset_graph
    written = [
        key for key in graph.get_all_asset_keys()
        if context.instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=key, asset_partitions=[day]), limit=1
        ).records
    ]
    checks = sorted(graph.get_check_keys_for_assets(written), key=lambda k: k.to_user_string())
    if not checks:
        return dg.SkipReason(f"no checked table has a partition {day}")
    return dg.RunRequest(
        run_key=f"full-checks-{day}", asset_selection=[], asset_check_keys=checks, tags={"dagster/partition": day}
    )


defs = dg.Definitions(
    jobs=[lakehouse_job, landed_titles_job, table_checks_job], sensors=[follow_upstream], schedules=[daily_full_checks]
)
