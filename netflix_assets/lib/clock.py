"""The one clock of the product: `now()` for ages and timestamps, `today()` for "today's partition".

Why one module: the day a sensor tick requests, the day bronze treats as the discovery day
(new files are claimed by today's partition only), the default day of the CLI tools and of
the demo were each read from the wall clock where they were needed, and the tests read it
again, once per module. Anything that ran across 00:00 UTC (a test module, a tick and the
run it requested, a parent and its subprocesses) then saw two different "todays".

- `today()`: the UTC date, unless `NETFLIX_TODAY=YYYY-MM-DD` pins it. The test session pins
  the day it started (`netflix_assets_tests/conftest.py`), so every test and every process it
  starts (dagster dev, crash-point children) agrees on one day; a replay can pin a past day.
  A pinned day must be a partition key `partitions.daily_partitions` has (from 2024-01-01 to
  tomorrow, UTC). Nothing else in the product reads `NETFLIX_TODAY`.
- `now()`: always the real time (aware, UTC), never shifted by a pinned day: the age of a
  landed file (settle_seconds), `_ingested_at`, `discovered_at`, backoffs and archive ages
  are durations against real file times, which a pinned day would make negative or days long.
"""

from __future__ import annotations

import datetime as dt
import re

from .. import settings

TODAY_ENV = "NETFLIX_TODAY"


def now() -> dt.datetime:
    """The real time, timezone-aware (UTC)."""
    return dt.datetime.now(dt.timezone.utc)


def today() -> dt.date:
    """The day the product treats as today (its daily partition): `NETFLIX_TODAY` if set, else now's UTC date."""
    pinned = (settings.get(TODAY_ENV) or "").strip()
    if not pinned:
        return now().date()
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", pinned):
            return dt.date.fromisoformat(pinned)
    except ValueError:
        pass
    raise ValueError(f"{TODAY_ENV}={pinned!r} is not a day as YYYY-MM-DD")
