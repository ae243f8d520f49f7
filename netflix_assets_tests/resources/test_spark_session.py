"""The local SparkSession: Ivy resolves Delta's jars once; later JVMs load the resolved files."""

import json
import os
import subprocess
import sys

from netflix_assets.resources import spark as s

CHILD = """
import json, sys
from netflix_assets.resources.spark import get_or_create_session
spark = get_or_create_session()
conf = spark.sparkContext.getConf()
spark.range(5).selectExpr("cast(id as string) AS show_id").write.format("delta").save(sys.argv[1])
rows = spark.read.format("delta").load(sys.argv[1]).count()
print(json.dumps({"packages": conf.get("spark.jars.packages", None), "jars": conf.get("spark.jars", ""), "rows": rows}))
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


RESOLVER = """
import json, sys, time
from netflix_assets.resources import spark as s
with s.delta_jars("test:coordinate:1") as jars:
    start = time.time()
    if jars is None:  # this process's JVM resolves by Ivy: a few seconds on a machine's first start
        time.sleep(1.5)
        s.remember_jars("test:coordinate:1", "file://" + sys.argv[1])
    end = time.time()
print(json.dumps({"jars": jars, "start": start, "end": end}))
"""


def test_two_first_starts_at_once_resolve_one_after_the_other(tmp_path):
    """Two JVMs resolving into an empty Ivy cache at once both fail (measured: two sessions started
    together on a fresh machine). Two processes starting together: one resolves, the other waits
    for it and then uses the jars it listed."""
    jar = tmp_path / "delta.jar"
    jar.write_bytes(b"PK")
    env = {**os.environ, "TMPDIR": str(tmp_path)}  # a scratch dir of its own: no list yet
    procs = [subprocess.Popen([sys.executable, "-c", RESOLVER, str(jar)], env=env, stdout=subprocess.PIPE, text=True)
             for _ in range(2)]
    first, second = sorted((json.loads(p.communicate(timeout=120)[0].strip().splitlines()[-1]) for p in procs),
                           key=lambda r: r["start"])
    assert first["jars"] is None and second["jars"] == [str(jar)]
    assert second["start"] >= first["end"]


def test_a_new_jvm_loads_the_jars_the_first_session_resolved(spark, tmp_path):
    """The test session resolved Delta through Ivy (or found the list): a new process skips Ivy
    (no `spark.jars.packages`), gets the same jars, and reads and writes Delta with them."""
    coordinate = s.delta_maven_coordinate()
    remembered = s.resolved_jars(coordinate)
    assert remembered and any("delta-spark" in j for j in remembered)
    out = subprocess.run([sys.executable, "-c", CHILD, str(tmp_path / "t")], capture_output=True, text=True, check=True)
    child = json.loads(out.stdout.strip().splitlines()[-1])
    assert child["packages"] is None
    assert [j.removeprefix("file://").removeprefix("file:") for j in child["jars"].split(",")] == remembered
    assert child["rows"] == 5


def test_the_grpc_probe_speaks_tls_where_the_connect_client_would(monkeypatch):
    """A Databricks Connect URL is TLS: a plain-text probe would call it "not Spark Connect"."""
    from pyspark.sql.connect.client.core import DefaultChannelBuilder

    from netflix_assets.resources.spark import uses_tls

    monkeypatch.delenv("SPARK_CONNECT_AUTHENTICATE_TOKEN", raising=False)
    for url in ("sc://127.0.0.1:15002", "sc://adb-1.2.azuredatabricks.net:443/;token=dapi1;x-databricks-cluster-id=0101",
                "sc://localhost:15002/;token=t", "sc://h:1/;use_ssl=true", "sc://h:1/;use_ssl=false"):
        builder = DefaultChannelBuilder(url)
        assert uses_tls(url) == (builder.secure and (builder.use_ssl or builder.host != "localhost")), url
