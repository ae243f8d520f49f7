"""Bronze checks of the data contract."""


import datetime as dt
from typing import Any, Mapping, Sequence

import dagster as dg
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from ..lib.checks import (
    PartitionCheck, TableReader, aggregate_check, naming, offenders, partition_check, row_count_drop_check,
)
from ..transforms.formats import SourceFormat
from .ledger import FAILED, LEDGER_TABLE, status_code

REQUEUE_COMMAND = 'make requeue FILES="<path> ..."  (python -m netflix_assets.bronze.ledger_store requeue <path> ...)'


def header_check(key: Sequence[str], formats: Sequence[SourceFormat], columns: Sequence[str]) -> PartitionCheck:
    names = [f.name for f in formats]

    known_sql = ", ".join(f"'{n}'" for n in names)
    metrics = {f"rows_{n}": f"count_if(_source_format = '{n}')" for n in names}
    metrics["rows_unknown"] = f"count_if(coalesce(_source_format NOT IN ({known_sql}), true))"

    @aggregate_check(
        key,
        "header_recognised",
        f"Every row comes from a file whose header is a known format ({', '.join(names)}) and the table has the contract's columns.",
        metrics,
        blocking=True,
    )
    def _body(values: Mapping[str, Any], df: DataFrame, day: dt.date, reader: TableReader) -> dg.AssetCheckResult:
        missing = sorted(set(columns) - set(df.columns))
        by_format = {n: values[f"rows_{n}"] for n in names if values[f"rows_{n}"]}
        unknown = values["rows_unknown"] or 0
        known = F.coalesce(F.col("_source_format").isin(*names), F.lit(False))
        if unknown:  # which formats: only a failing check reads the partition again
            by_format.update({str(r["_source_format"]): r["count"] for r in df.where(~known).groupBy("_source_format").count().collect()})
        metadata = {"rows_by_format": dg.MetadataValue.json(by_format)}
        if missing:
            metadata["missing_columns"] = dg.MetadataValue.json(missing)
        if key[-1] == "netflix_titles":
            refused = reader.partition_or_none(("quarantine", "bronze_netflix_titles"), day)
            if refused is not None:
                metadata["refused_files"] = refused.select("_source_file").distinct().count()
        parts = [naming("contract column(s) missing", missing)] if missing else []
        if unknown:
            files = df.where(~known).select("_source_file", "_source_format")
            parts.append(naming("file(s) of an unknown format", offenders(files, ["_source_file", "_source_format"]),
                                files.distinct().count()))
        return dg.AssetCheckResult(
            passed=not missing and not unknown, metadata=metadata, description="; ".join(parts) or None
        )

    return _body


def failed_files_result(rows: Sequence[dict], limit: int = 100) -> dg.AssetCheckResult:
    """The `no_failed_files` verdict on a partition's ledger rows: a warning naming every file the
    sensor gave up on (its runs kept failing), its last error, and how to re-queue it. Paths are
    shown as the ledger stores them (relative to the landing zone; absolute in ledgers written
    before paths were relative): `requeue` takes either form as it is."""
    failed = sorted((r for r in rows if status_code(r["status"]) == FAILED), key=lambda r: r["path"])
    listed = [
        {"path": r["path"], "error": r["status"].partition(":")[2].strip(), "run_id": r["run_id"]} for r in failed[:limit]
    ]
    metadata = {"failed_files": len(failed)}
    if failed:
        metadata["files"] = dg.MetadataValue.json(listed)
    description = (
        naming("file(s) recorded `failed` after their runs kept failing", [r["path"] for r in listed[:5]], len(failed))
        + f". Fix the cause, then re-queue them: {REQUEUE_COMMAND}"
        if failed
        else None
    )
    return dg.AssetCheckResult(
        passed=not failed, severity=dg.AssetCheckSeverity.WARN, metadata=metadata, description=description
    )


def failed_files_check(key: Sequence[str]) -> PartitionCheck:
    @partition_check(
        key,
        "no_failed_files",
        "No landed file of the partition is recorded `failed` in the ledger bronze/_ingested_files "
        "(the sensor gave up on it after its retries). Paths as stored: relative to the landing zone. "
        f"Re-queue with: {REQUEUE_COMMAND}",
    )
    def _body(_: DataFrame, day: dt.date, reader: TableReader) -> dg.AssetCheckResult:
        ledger = reader.partition_or_none(("bronze", LEDGER_TABLE), day)
        if ledger is None:
            return failed_files_result([])
        # Only the failed rows leave Spark: a partition may list thousands of ingested files.
        rows = ledger.where(ledger["status"].startswith(FAILED)).select("path", "status", "run_id").collect()
        return failed_files_result([r.asDict() for r in rows])

    return _body


def bronze_checks(key: Sequence[str], formats: Sequence[SourceFormat], columns: Sequence[str]) -> list:
    checks = [header_check(key, formats, columns), row_count_drop_check(key)]
    if key[-1] == "netflix_titles":  # the only table fed by the landing-zone sensor
        checks.append(failed_files_check(key))
    return checks
