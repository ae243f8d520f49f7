"""A class-data-sharing (CDS) archive of the classes a local Spark + Delta session loads.

    python -m netflix_assets.resources.jvm_archive [--force]

Every run launched from the UI, every benchmark process and test subprocess starts its own JVM,
which loads and verifies ~20,000 Spark, Delta and Hadoop classes before its first Delta commit.
Java's dynamic CDS archive (`-XX:ArchiveClassesAtExit`, JDK 13+) keeps those classes parsed and
verified in one memory-mapped file; later JVMs map it (`-XX:SharedArchiveFile`). Measured on 2
cores: a fresh process to its first Delta write, replace and read took 24-27 s without and
17-23 s with it (3 alternated pairs).

The archive is made once per virtualenv here (the `make` targets call this module), by a JVM that
runs a small Delta workload and exits; `get_or_create_session` uses it when it exists. Java checks
the archive against the running JVM and classpath and silently runs without it on any mismatch
(another JDK, other jars), so a stale archive only costs the time it would have saved.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

WORKLOAD = r"""
import datetime as dt, shutil, sys
from pyspark.sql import Window, functions as F
from netflix_assets.resources.spark import get_or_create_session
spark = get_or_create_session(extra_conf={"spark.driver.extraJavaOptions": sys.argv[1]})
path, day = sys.argv[2], dt.date.today()
rows = spark.range(2000).select(F.col("id").cast("string").alias("show_id"), (F.col("id") % 7).alias("n"),
                                F.lit(day).alias("ingest_date"))
for _ in range(2):  # a first write, then a replaceWhere over it (reads the snapshot, removes files)
    (rows.write.format("delta").mode("overwrite").option("replaceWhere", f"ingest_date = DATE'{day}'")
     .partitionBy("ingest_date").save(path))
table = spark.read.format("delta").load(path).where(F.col("ingest_date") == F.lit(day))
table.groupBy("n").agg(F.count_distinct("show_id")).collect()
table.join(table.select("show_id"), "show_id", "left_anti").count()
table.withColumn("r", F.rank().over(Window.partitionBy("n").orderBy("show_id"))).toPandas()
table.mapInArrow(lambda batches: batches, table.schema).count()
from delta.tables import DeltaTable
DeltaTable.forPath(spark, path).history(1).collect()
spark.stop()
# The JVM writes the archive as it exits: wait for it, so the caller can rename a complete file.
from pyspark import SparkContext
proc = getattr(SparkContext._gateway, "proc", None)
if proc is not None:
    proc.stdin.close()
    proc.wait(timeout=600)
shutil.rmtree(path, ignore_errors=True)
"""


def archive_path() -> str:
    """Where this virtualenv's archive lives (Spark's scratch folder; one per interpreter prefix,
    pyspark version and Delta jar, since the archive is only valid for one classpath)."""
    import pyspark

    from .spark import _scratch_dir, delta_maven_coordinate

    key = hashlib.sha1(f"{sys.prefix}|{pyspark.__version__}|{delta_maven_coordinate()}".encode()).hexdigest()[:16]
    return os.path.join(_scratch_dir(), f"spark-classes-{key}.jsa")


def driver_java_options(options: str = "") -> str:
    """The driver JVM's options with `-XX:SharedArchiveFile=...` added when the archive exists
    (and the options do not already make or name one)."""
    path = archive_path()
    if not os.path.isfile(path) or "ArchiveClassesAtExit" in options or "SharedArchiveFile" in options:
        return options
    return f"{options} -XX:SharedArchiveFile={path}".strip()


def build(force: bool = False) -> Path | None:
    """Make the archive (~30 s) unless it exists; returns its path, or None if Java could not make one."""
    final = Path(archive_path())
    if final.is_file() and not force:
        print(f"JVM class archive: {final} (already made)")
        return final
    started = time.perf_counter()
    fd, tmp = tempfile.mkstemp(suffix=".jsa", dir=final.parent)
    os.close(fd)
    os.unlink(tmp)  # the JVM creates it at exit
    work = tempfile.mkdtemp(prefix="jvm-archive-")
    try:
        out = subprocess.run([sys.executable, "-c", WORKLOAD, f"-XX:ArchiveClassesAtExit={tmp} -Xlog:cds=off,cds+dynamic=off",
                              os.path.join(work, "t")], capture_output=True, text=True)
        if out.returncode != 0 or not os.path.isfile(tmp) or os.path.getsize(tmp) == 0:
            tail = out.stderr.strip().splitlines()[-1:] or [f"exit {out.returncode}"]
            print(f"JVM class archive not made ({tail[0]}): sessions start without it", file=sys.stderr)
            return None
        os.replace(tmp, final)  # atomic: a starting JVM never maps half an archive
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
        import shutil

        shutil.rmtree(work, ignore_errors=True)
    print(f"JVM class archive: {final} ({final.stat().st_size >> 20} MB, made in {time.perf_counter() - started:.0f} s)")
    return final


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--force", action="store_true", help="make it again (after a JDK upgrade)")
    args = parser.parse_args(argv)
    build(args.force)
    return 0  # never fails a make target: without the archive sessions are only slower


if __name__ == "__main__":
    sys.exit(main())
