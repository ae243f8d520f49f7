"""silver/netflix_titles as a Databricks task, driven by Dagster Pipes.

This file is uploaded to DBFS and run as a `spark_python_task` on an existing
(all-purpose) cluster by `netflix_assets.pipes.assets`. It imports no Dagster
beyond `dagster_pipes` (a cluster library), and of this project only the pure
PySpark transforms (`netflix_assets.transforms.silver`, shipped as a small
wheel library: see `assets.transforms_wheel`).

Pipes bootstrap: on an existing cluster the orchestrator cannot set environment
variables, so the context and messages params come as `--dagster-pipes-*` CLI
arguments (`PipesCliArgsParamsLoader`); the context is a JSON file in a DBFS temp
dir, read through the `/dbfs` mount (`PipesDbfsContextLoader`), and messages are
written as chunks to another DBFS temp dir (`PipesDbfsMessageWriter`), which the
orchestrator reads back with the DBFS API. On serverless compute (no DBFS) both are
on a Unity Catalog volume (`/Volumes/...` paths), and its `spark` is a Spark Connect
session: nothing here calls `sparkContext`, RDDs or py4j.

Extras: `lake_uri` (the lake root Spark reads and writes: `abfss://...` in prod).
The partition is the Pipes context's `partition_key` (a day, `YYYY-MM-DD`).
"""

from __future__ import annotations

import datetime as dt

from dagster_pipes import (
    PipesCliArgsParamsLoader,
    PipesContext,
    PipesDbfsContextLoader,
    PipesDbfsMessageWriter,
    PipesUnityCatalogVolumesContextLoader,
    PipesUnityCatalogVolumesMessageWriter,
    open_dagster_pipes,
)

PARTITION_COLUMN = "ingest_date"  # = netflix_assets.partitions.PARTITION_COLUMN (which imports dagster)
CHECK_NAME = "show_id_not_null_unique"  # = lib.checks.key_check(..., ["show_id"]) in the other deployments


def _table(lake_uri: str, *path: str) -> str:
    return "/".join([lake_uri.rstrip("/"), *path])


def build_silver_titles(pipes: PipesContext) -> None:
    from pyspark.sql import SparkSession
    from pyspark.sql import functions as F

    from netflix_assets.lib.delta_layout import portable_types
    from netflix_assets.transforms import silver as t
    from netflix_assets.transforms.quality import key_verdict

    lake_uri = pipes.get_extra("lake_uri")
    day = dt.date.fromisoformat(pipes.partition_key)
    bronze_uri = _table(lake_uri, "bronze", "netflix_titles")
    silver_uri = _table(lake_uri, "silver", "netflix_titles")

    spark = SparkSession.builder.getOrCreate()  # the cluster's session
    bronze = spark.read.format("delta").load(bronze_uri).where(F.col(PARTITION_COLUMN) == F.lit(day))
    classified = t.classify_titles(bronze).persist()
    try:
        silver = portable_types(t.silver_titles(classified))
        refused_rows = t.refused(classified).count()
        # As lib.tables.write_partitions: replace exactly this day, never append.
        predicate = f"{PARTITION_COLUMN} >= DATE'{day}' AND {PARTITION_COLUMN} < DATE'{day + dt.timedelta(days=1)}'"
        (
            silver.write.format("delta")
            # = lib.delta_layout.new_table_options(silver.columns): statistics on the replace predicates' columns.
            .option("delta.dataSkippingStatsColumns", "show_id,_source_file")
            .option("mergeSchema", "true")
            .mode("overwrite")
            .option("replaceWhere", predicate)
            .partitionBy(PARTITION_COLUMN)
            .save(silver_uri)
        )
    finally:
        classified.unpersist()

    # Row count and version from the Delta commit just made (as lib.tables.commit_metadata).
    # SQL, not the py4j DeltaTable API: serverless compute speaks only Spark Connect.
    last = spark.sql(f"DESCRIBE HISTORY delta.`{silver_uri}` LIMIT 1").select("version", "operation", "operationMetrics").first()
    metrics = last["operationMetrics"] or {}
    pipes.report_asset_materialization(
        metadata={
            "dagster/row_count": int(metrics.get("numOutputRows", 0)),
            "delta_version": int(last["version"]),
            "delta_operation": last["operation"],
            "refused_rows": refused_rows,
            "dagster/uri": {"raw_value": silver_uri, "type": "path"},
        },
        data_version=str(last["version"]),
    )

    written = spark.read.format("delta").load(silver_uri).where(F.col(PARTITION_COLUMN) == F.lit(day))
    verdict = key_verdict(written, ["show_id"])
    pipes.report_asset_check(
        check_name=CHECK_NAME,
        passed=verdict.passed,
        metadata={
            "rows": verdict.rows,
            "null_keys": verdict.null_keys,
            "duplicate_keys": verdict.duplicate_keys,
            **({"offenders": verdict.description} if verdict.description else {}),  # Pipes checks carry no description
        },
    )


def main() -> None:
    params = PipesCliArgsParamsLoader()
    # The orchestrator's client decides: a volume path for serverless, a DBFS path otherwise.
    on_volume = params.is_dagster_pipes_process() and params.load_context_params().get("path", "").startswith("/Volumes/")
    with open_dagster_pipes(
        context_loader=PipesUnityCatalogVolumesContextLoader() if on_volume else PipesDbfsContextLoader(),
        message_writer=PipesUnityCatalogVolumesMessageWriter() if on_volume else PipesDbfsMessageWriter(),
        params_loader=params,
    ) as pipes:
        build_silver_titles(pipes)


if __name__ == "__main__":
    main()
