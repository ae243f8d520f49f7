"""Bronze checks of the data contract."""


import datetime as dt
from typing import Sequence

import dagster as dg
from pyspark.sql import DataFrame

from ..lib.checks import PartitionCheck, TableReader, partition_check, row_count_drop_check
from ..transforms.formats import SourceFormat


def header_check(key: Sequence[str], formats: Sequence[SourceFormat], columns: Sequence[str]) -> PartitionCheck:
    names = [f.name for f in formats]

    @partition_check(
        key,
        "header_recognised",
        f"Every row comes from a file whose header is a known format ({', '.join(names)}) and the table has the contract's columns.",
        blocking=True,
    )
    def _body(df: DataFrame, day: dt.date, reader: TableReader) -> dg.AssetCheckResult:
        missing = sorted(set(columns) - set(df.columns))
        by_format = {r["_source_format"]: r["count"] for r in df.groupBy("_source_format").count().collect()}
        unknown = {str(k): v for k, v in by_format.items() if k not in names}
        metadata = {"rows_by_format": dg.MetadataValue.json({str(k): v for k, v in by_format.items()})}
        if missing:
            metadata["missing_columns"] = dg.MetadataValue.json(missing)
        if key[-1] == "netflix_titles":
            refused = reader.partition_or_none(("quarantine", "bronze_netflix_titles"), day)
            if refused is not None:
                metadata["refused_files"] = refused.select("_source_file").distinct().count()
        return dg.AssetCheckResult(passed=not missing and not unknown, metadata=metadata)

    return _body


def bronze_checks(key: Sequence[str], formats: Sequence[SourceFormat], columns: Sequence[str]) -> list:
    return [header_check(key, formats, columns), row_count_drop_check(key)]
