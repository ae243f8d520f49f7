"""silver/netflix_titles as a Databricks task, driven by Dagster Pipes.

This file is uploaded to DBFS and run as a `spark_python_task` on an existing
(all-purpose) cluster by `netflix_assets.pipes.assets`. It imports no Dagster
beyond `dagster_pipes` (a cluster library), and of this project only the pure
PySpark transforms (`netflix_assets.transforms`) and the Delta module
(`netflix_assets.lib.delta`), shipped as a small wheel library: see
`assets.transforms_wheel`.

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

from netflix_assets.transforms.quality import key_check_name

KEY = ["show_id"]
CHECK_NAME = key_check_name(KEY)  # the name lib.checks.key_check gives it in the other deployments


def _table(lake_uri: str, *path: str) -> str:
    return "/".join([lake_uri.rstrip("/"), *path])


def build_silver_titles(pipes: PipesContext) -> None:
    """The partition's silver titles written as every deployment writes them (`lib.delta`: replace
    exactly this day, never append), then its key check reported under the same name and rule."""
    from pyspark.sql import SparkSession
    from pyspark.sql import functions as F

    from netflix_assets.lib import delta
    from netflix_assets.transforms import silver as t
    from netflix_assets.transforms.quality import key_verdict

    lake_uri = pipes.get_extra("lake_uri")
    day = dt.date.fromisoformat(pipes.partition_key)
    bronze_uri = _table(lake_uri, "bronze", "netflix_titles")
    silver_uri = _table(lake_uri, "silver", "netflix_titles")

    spark = SparkSession.builder.getOrCreate()  # the cluster's session
    bronze = spark.read.format("delta").load(bronze_uri).where(F.col(delta.PARTITION_COLUMN) == F.lit(day))
    classified = t.classify_titles(bronze).persist()
    try:
        refused_rows = t.refused(classified).count()
        marker = delta.write_partitions(t.silver_titles(classified), silver_uri, day, day + dt.timedelta(days=1))
    finally:
        classified.unpersist()

    # The commit just made, by Spark's DESCRIBE HISTORY: delta-rs has no credentials on the cluster.
    commit = delta.commit_metadata(spark, silver_uri, marker=marker, read_log=False)
    pipes.report_asset_materialization(
        metadata={**commit, "refused_rows": refused_rows, "dagster/uri": {"raw_value": silver_uri, "type": "path"}},
        data_version=str(commit.get("delta_version")),
    )

    written = spark.read.format("delta").load(silver_uri).where(F.col(delta.PARTITION_COLUMN) == F.lit(day))
    verdict = key_verdict(written, KEY)
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
