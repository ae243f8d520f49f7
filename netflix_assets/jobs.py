"""Jobs over the asset graph."""

import dagster as dg

from .bronze.assets import landing_zone

# Everything Dagster can materialize for one ingest_date (the landing zone is external).
all_tables = dg.AssetSelection.all() - dg.AssetSelection.assets(landing_zone.key)

lakehouse_job = dg.define_asset_job(
    "lakehouse_job",
    selection=all_tables,
    description="Materialize every table of the lakehouse for one ingest_date, with its checks.",
)

defs = dg.Definitions(jobs=[lakehouse_job])
