"""Jobs and automation over the asset graph."""

import dagster as dg

from .bronze.assets import bronze_netflix_titles, landing_zone
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

defs = dg.Definitions(jobs=[lakehouse_job, landed_titles_job], sensors=[follow_upstream])
