"""`make serve`: Spark's Thrift JDBC/ODBC server (HiveServer2) over the lake, on 127.0.0.1.

    python -m netflix_assets.serving.thrift_server [--port 10000] [--lake DIR]

The server ships in the pinned pyspark wheel (`spark-hive-thriftserver`, no start script: it is
started with `spark-submit --class ...HiveThriftServer2`). Why Delta's jars go on the driver's
class path and not `--jars`/`--packages`: measured here, with `--packages` alone every session
of the Thrift server fails (ClassNotFoundException: DeltaCatalog), because HiveServer2 sessions
resolve the catalog class through the system class loader. Only Delta's own jars are put there:
the rest of what Ivy resolved (Jackson, Parquet, Hadoop client) would shadow Spark's copies.

Its metastore (embedded Derby) and log live under the instance directory ($DAGSTER_HOME/serving),
so registrations survive restarts; on start the launcher registers every table of the lake
(`serving/catalog.py`), then the pipeline's `serving/sql_catalog` keeps the catalog current.
Stopped whole by Ctrl-C or SIGTERM (its own process group, killed after GRACE seconds).
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Optional

from .. import settings
from .catalog import STORES_SCHEMAS
from ..resources.spark_connect import own_group_ending_with_parent
from ..resources.sql_endpoint import DEFAULT_PORT

THRIFT_SERVER_CLASS = "org.apache.spark.sql.hive.thriftserver.HiveThriftServer2"
GRACE = 10.0


def delta_class_path() -> str:
    """Delta's own jars, as the project's sessions resolved them (resolving them once if needed)."""
    from ..resources.spark import delta_maven_coordinate, get_or_create_session, resolved_jars

    jars = resolved_jars(delta_maven_coordinate())
    if not jars:  # a machine where no session ran yet: one local session resolves them
        get_or_create_session().stop()
        jars = resolved_jars(delta_maven_coordinate()) or []
    delta = [j for j in jars if os.path.basename(j).startswith("io.delta_")]
    if not delta:
        raise RuntimeError("Delta's jars are not resolved: run `make demo` (or any Spark run) once, online")
    return os.pathsep.join(delta)


def command(port: int, home: Path, driver_memory: str = "2g") -> list[str]:
    import pyspark

    from ..resources.spark import LOCAL_SPARK_CONF

    submit = Path(pyspark.__file__).parent / "bin" / "spark-submit"
    metastore = home / "metastore_db"
    conf = {
        **LOCAL_SPARK_CONF,
        "spark.driver.extraClassPath": delta_class_path(),
        "spark.driver.memory": driver_memory,
        "spark.sql.warehouse.dir": str(home / "warehouse"),
        "spark.hadoop.javax.jdo.option.ConnectionURL": f"jdbc:derby:;databaseName={metastore};create=true",
        "spark.sql.catalogImplementation": "hive",
        # Delta registers an external table with an empty schema in the metastore, where HiveServer2's
        # GetColumns (Power BI's and DBeaver's navigators) reads it: measured, no column for a Delta
        # table; with this, CREATE TABLE stores the Delta schema there (and a commit made through the
        # endpoint updates it). Not a commit of the pipeline's: a column it adds or retypes gets the
        # table registered again by the catalog sync (`catalog.plan`).
        STORES_SCHEMAS: "true",
    }
    cmd = [str(submit), "--master", "local[2]", "--class", THRIFT_SERVER_CLASS, "--name", "netflix-sql-endpoint"]
    for key, value in conf.items():
        cmd += ["--conf", f"{key}={value}"]
    cmd += ["--hiveconf", f"hive.server2.thrift.port={port}", "--hiveconf", "hive.server2.thrift.bind.host=127.0.0.1"]
    return [*cmd, "spark-internal"]


def port_taken(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def start(port: int, home: Path) -> subprocess.Popen:
    """The server in a process group of its own, its output in `home`/thrift-server.log."""
    home.mkdir(parents=True, exist_ok=True)
    log = open(home / "thrift-server.log", "ab")
    env = {**os.environ, "PYSPARK_PYTHON": sys.executable}
    # cwd: Derby writes derby.log into the working directory.
    # A group of its own (`stop` signals the JVM and its Python workers), ending with this process
    # even if it is killed (Linux): a JVM left behind would hold the port for the next `make serve`.
    return subprocess.Popen(command(port, home), cwd=home, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            env=env, preexec_fn=own_group_ending_with_parent)


def wait_ready(proc: subprocess.Popen, port: int, home: Path, timeout: float = 300.0) -> float:
    """Seconds until the port accepts connections (HiveServer2 opens it last)."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if proc.poll() is not None:
            tail = (home / "thrift-server.log").read_text(errors="replace").splitlines()[-15:]
            raise RuntimeError(f"the Thrift server exited with {proc.returncode}; its log ends:\n" + "\n".join(tail))
        if port_taken(port):
            return time.monotonic() - started
        time.sleep(0.5)
    raise TimeoutError(f"the Thrift server did not open port {port} in {timeout:.0f} s (log: {home / 'thrift-server.log'})")


def stop(proc: subprocess.Popen, grace: float = GRACE) -> None:
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(grace)
    except ProcessLookupError:
        return
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def register_lake(port: int, lake_root: str) -> list[str]:
    """Register every table of the code location that exists in the lake at `lake_root`."""
    from ..definitions import build_definitions
    from ..deployments import local_resources
    from ..resources.lake import LakeResource
    from ..resources.sql_endpoint import SqlEndpointResource
    from .assets import lake_tables, served_keys
    from .catalog import sync

    keys = served_keys(build_definitions(local_resources(lake_uri=lake_root)).resolve_asset_graph().get_all_asset_keys())
    with SqlEndpointResource(port=port).cursor() as cursor:
        # Started on this lake, the endpoint serves it: tables registered from another lake move here.
        lake = LakeResource(root=lake_root)
        return sync(cursor, lake_tables(lake, keys), lake.root_uri, take_over=True)


def main(argv: Optional[list[str]] = None) -> int:
    from ..resources.lake import DEFAULT_LAKE_URI, normalize_root

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=int(settings.get("NETFLIX_SQL_PORT") or DEFAULT_PORT))
    parser.add_argument("--lake", default=settings.get("NETFLIX_LAKE_URI", DEFAULT_LAKE_URI))
    parser.add_argument("--home", type=Path, default=Path(os.environ.get("DAGSTER_HOME") or ".dagster_home") / "serving")
    args = parser.parse_args(argv)
    if port_taken(args.port):
        print(f"make serve: port {args.port} is taken (a server already running?); choose another with "
              f"NETFLIX_SQL_PORT=<port> make serve", file=sys.stderr)
        return 1
    home = args.home.resolve()
    print(f"make serve: starting the SQL endpoint (log: {home / 'thrift-server.log'})", flush=True)
    proc = start(args.port, home)

    def on_signal(_signum: int, _frame) -> None:
        raise KeyboardInterrupt

    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, on_signal)
    try:
        seconds = wait_ready(proc, args.port, home)
        statements = register_lake(args.port, normalize_root(args.lake))
        print(f"make serve: ready in {seconds:.0f} s; {sum(s.startswith('CREATE TABLE') for s in statements)} table(s) "
              f"newly registered from {args.lake}\n"
              f"  JDBC: jdbc:hive2://127.0.0.1:{args.port}/default   (any user name, no password)\n"
              "  try:  make sql Q='SELECT * FROM gold.kpi_top_countries ORDER BY ingest_date DESC, rank LIMIT 5'\n"
              "  Ctrl-C stops it", flush=True)
        proc.wait()
        print(f"make serve: the Thrift server exited with {proc.returncode} (log: {home / 'thrift-server.log'})", file=sys.stderr)
        return proc.returncode or 1
    except KeyboardInterrupt:
        return 0
    except Exception as err:  # noqa: BLE001: a failure to start or register stops the server
        print(f"make serve: {err}", file=sys.stderr)
        return 1
    finally:
        # A second Ctrl-C while the server stops must not cut `stop` short of its SIGKILL.
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, signal.SIG_IGN)
        stop(proc)


if __name__ == "__main__":
    sys.exit(main())
