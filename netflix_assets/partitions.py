"""The one daily partitioning every table shares (contract: `ingest_date`, UTC)."""

import dagster as dg

PARTITION_COLUMN = "ingest_date"

# end_offset=1: today's partition exists while today is still running, so the
# files landing today can be ingested today (the demo materializes it).
daily_partitions = dg.DailyPartitionsDefinition(start_date="2024-01-01", timezone="UTC", end_offset=1)
