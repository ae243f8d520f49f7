"""The exactly-once ledger of landed titles files (`<lake>/bronze/_ingested_files`).

Like Auto Loader's checkpoint, it is the ingestion's own state, written by the
bronze step in the same run as bronze (not a separately selectable asset, so
the two cannot drift apart). It is still a plain Delta table anyone can query.
A file belongs to the UTC day it was first discovered; bronze[D] reads exactly
the files of D. Re-materializing D re-reads those files, never another day's.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Iterable, Optional

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from ..resources.landing import LandedFile

LEDGER_SCHEMA = (
    "path string, size long, modified_at timestamp, discovered_at timestamp, "
    "ingest_date date, run_id string"
)


@dataclass(frozen=True)
class Claim:
    path: str
    size: int
    modified_at: Optional[dt.datetime]
    discovered_at: dt.datetime
    ingest_date: dt.date


def known_claims(ledger: Optional[DataFrame]) -> dict[str, Claim]:
    """path -> claim. The ledger is one small row per file: reading it whole is cheap."""
    if ledger is None:
        return {}
    rows = ledger.select("path", "size", "modified_at", "discovered_at", "ingest_date").collect()
    return {r["path"]: Claim(r["path"], r["size"], r["modified_at"], r["discovered_at"], r["ingest_date"]) for r in rows}


def claims_for_day(
    day: dt.date,
    known: dict[str, Claim],
    landed: Iterable[LandedFile],
    now: dt.datetime,
) -> list[Claim]:
    """The files of partition `day`: those already claimed by it, plus, when `day`
    is today (discovery day), every landed file no day has claimed yet."""
    mine = [c for c in known.values() if c.ingest_date == day]
    if day != now.date():
        return sorted(mine, key=lambda c: c.path)
    new = [Claim(f.uri, f.size, f.modified, now, day) for f in landed if f.uri not in known]
    return sorted(mine + new, key=lambda c: c.path)


def ledger_partition(spark: SparkSession, claims: list[Claim], run_id: str, refused: DataFrame) -> DataFrame:
    """Ledger rows of one day, with each file's status (`ingested` or why it was refused)."""
    rows = [(c.path, c.size, c.modified_at, c.discovered_at, c.ingest_date, run_id) for c in claims]
    ledger = spark.createDataFrame(rows, LEDGER_SCHEMA)
    reasons = refused.groupBy(F.col("_source_file").alias("path")).agg(F.first("_reason").alias("_reason"))
    return (
        ledger.join(F.broadcast(reasons), "path", "left")
        .withColumn("status", F.coalesce(F.col("_reason"), F.lit("ingested")))
        .drop("_reason")
    )
