"""The one daily partitioning every table shares (contract: `ingest_date`, UTC).

Where it starts: `NETFLIX_PARTITIONS_START` (YYYY-MM-DD), else 2024-01-01, which leaves room
to backfill history into a production lake. A new local lake has no history: `make demo` and
`make dev` start its partitions on the day its instance was created (the file
`$DAGSTER_HOME/partitions_start`, written with the instance), so the UI does not show every
asset with ~1,000 "missing" partitions before its first day. Every process of one deployment
must see the same start (the Makefile passes it to the webserver, the daemon and their runs).
"""

import datetime as dt
from typing import Mapping, Optional

import dagster as dg

from . import settings
from .lib.delta import PARTITION_COLUMN  # noqa: F401 (the partitions' column, defined with the writes)

PARTITIONS_START_ENV = "NETFLIX_PARTITIONS_START"
DEFAULT_PARTITIONS_START = "2024-01-01"

# end_offset=1: today's partition exists while today is still running, so the
# files landing today can be ingested today (the demo materializes it).
daily_partitions = dg.DailyPartitionsDefinition(
    start_date=settings.get(PARTITIONS_START_ENV, DEFAULT_PARTITIONS_START), timezone="UTC", end_offset=1
)


# A run that may still read or write its day's tables: queued (it reads them when it starts) up to
# cancelling. Not NOT_STARTED: a run created and never launched stays so, and would hold its day for good.
RUNNING = (dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED,
           dg.DagsterRunStatus.CANCELING)


def days_with_runs_in_progress(instance: dg.DagsterInstance, ignored: Optional[Mapping[str, str]] = None) -> set[str]:
    """The partitions (days) of the runs that have not ended, a run of a range of days included;
    not those of the runs carrying one of the `ignored` tag values."""
    days: set[str] = set()
    for run in instance.get_runs(filters=dg.RunsFilter(statuses=list(RUNNING))):
        tags = run.tags
        if any(tags.get(key) == value for key, value in (ignored or {}).items()):
            continue
        if "dagster/partition" in tags:
            days.add(tags["dagster/partition"])
        start, end = tags.get("dagster/asset_partition_range_start"), tags.get("dagster/asset_partition_range_end")
        try:
            day, last = dt.date.fromisoformat(start or ""), dt.date.fromisoformat(end or "")
        except ValueError:  # no range, or not of daily partitions
            continue
        while day <= last:
            days.add(day.isoformat())
            day += dt.timedelta(days=1)
    return days
