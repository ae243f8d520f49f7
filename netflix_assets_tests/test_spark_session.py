"""The local SparkSession: Ivy resolves Delta's jars once and a class-data-sharing archive keeps
the JVM's classes parsed; later JVMs load the resolved jar files and map the archive."""

import json
import subprocess
import sys

from netflix_assets.resources import jvm_archive
from netflix_assets.resources import spark as s

CHILD = """
import json, sys
from netflix_assets.resources.spark import get_or_create_session
# -Xshare:on: the JVM refuses to start unless it maps the class archive.
spark = get_or_create_session(extra_conf={"spark.driver.extraJavaOptions": "-Xshare:on"})
conf = spark.sparkContext.getConf()
spark.range(5).selectExpr("cast(id as string) AS show_id").write.format("delta").save(sys.argv[1])
rows = spark.read.format("delta").load(sys.argv[1]).count()
print(json.dumps({"packages": conf.get("spark.jars.packages", None), "jars": conf.get("spark.jars", ""), "rows": rows,
                  "java_options": conf.get("spark.driver.extraJavaOptions", "")}))
"""


def test_remembered_jars_are_used_only_while_every_file_is_there(tmp_path, monkeypatch):
    monkeypatch.setattr(s, "_scratch_dir", lambda: str(tmp_path))
    jars = [tmp_path / "a.jar", tmp_path / "b.jar"]
    for j in jars:
        j.write_bytes(b"PK")
    coordinate = "io.delta:delta-spark_4.2_2.13:4.4.0"
    assert s.resolved_jars(coordinate) is None  # nothing resolved yet: Ivy runs
    s.remember_jars(coordinate, ",".join(f"file://{j}" for j in jars))
    assert s.resolved_jars(coordinate) == [str(j) for j in jars]
    assert s.resolved_jars("io.delta:delta-spark_4.2_2.13:9.9.9") is None  # another version resolves anew
    jars[1].unlink()
    assert s.resolved_jars(coordinate) is None  # a jar gone (Ivy cache cleaned): resolve again
    s.remember_jars("other:coordinate:1", f"file://{jars[1]}")
    assert s.resolved_jars("other:coordinate:1") is None  # a list naming a missing file is never kept


def test_the_class_archive_is_added_to_the_driver_options_only_when_made(tmp_path, monkeypatch):
    archive = tmp_path / "spark-classes.jsa"
    monkeypatch.setattr(jvm_archive, "archive_path", lambda: str(archive))
    assert jvm_archive.driver_java_options("-Xss4m") == "-Xss4m"  # not made yet
    archive.write_bytes(b"x")
    assert jvm_archive.driver_java_options("") == f"-XX:SharedArchiveFile={archive}"
    assert jvm_archive.driver_java_options("-Xss4m") == f"-Xss4m -XX:SharedArchiveFile={archive}"
    making = f"-XX:ArchiveClassesAtExit={tmp_path / 'new.jsa'}"
    assert jvm_archive.driver_java_options(making) == making  # the JVM making an archive maps none


def test_a_new_jvm_loads_the_jars_the_first_session_resolved_and_maps_the_class_archive(spark, tmp_path):
    """The test session resolved Delta through Ivy (or found the list), and `make` made the class
    archive (made here if not): a new process skips Ivy (no `spark.jars.packages`), gets the same
    jars, maps the archive (`-Xshare:on` would stop its JVM otherwise), and writes and reads Delta."""
    coordinate = s.delta_maven_coordinate()
    remembered = s.resolved_jars(coordinate)
    assert remembered and any("delta-spark" in j for j in remembered)
    archive = jvm_archive.build()
    assert archive is not None and archive.stat().st_size > 0
    out = subprocess.run([sys.executable, "-c", CHILD, str(tmp_path / "t")], capture_output=True, text=True, check=True)
    child = json.loads(out.stdout.strip().splitlines()[-1])
    assert child["packages"] is None
    assert [j.removeprefix("file://").removeprefix("file:") for j in child["jars"].split(",")] == remembered
    assert child["rows"] == 5
    assert child["java_options"].endswith(f"-Xshare:on -XX:SharedArchiveFile={archive}")  # Spark prepends its own
