"""The SparkSession used by every Spark asset.

One session per process: it is created lazily on first use (never at import,
so `dagster definitions validate` starts no JVM) and then reused by every step
of the run. Starting a JVM costs ~10 s on a 2-core laptop, which is why the
local deployment runs steps in process (see `deployments.py`).

With `remote` (`NETFLIX_SPARK_REMOTE=sc://127.0.0.1:<port>`, set by `make dev`) the session is
a Spark Connect client of a server that is already warm: a new process answers its first query
in ~1 s instead of ~12 s, and its queries run on a JIT that earlier runs warmed (BENCHMARKS.md).
The package's Spark code uses only the API that classic and Connect sessions share, so the same
code runs on Databricks serverless and standard access mode, which speak only Connect. A
remote that does not answer is not fatal: the run warns and starts its own JVM, as without it.
"""

from __future__ import annotations

import contextlib
import os
import socket
import sys
import threading
import warnings
from urllib.parse import urlparse
from typing import TYPE_CHECKING, Iterator, Optional

import dagster as dg
from pydantic import Field

# No import of the package here (its one variable, NETFLIX_DELTA_JAR_VERSION, is read with
# os.environ): the Databricks emulator loads this file by path as the runtime's session factory.

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

_LOCK = threading.Lock()
_REMOTE: dict[str, "SparkSession"] = {}
_UNANSWERED: set[str] = set()  # warned once per process, then the process's own JVM is used

# The Spark Connect endpoint a deployment's runs use (`deployments.py`); `make dev` sets it.
REMOTE_ENV = "NETFLIX_SPARK_REMOTE"

# Laptop tuning: 2 cores, small data, nothing listening beyond loopback.
LOCAL_SPARK_CONF: dict[str, str] = {
    # The throughput collector: batch work has no pause target, and G1's concurrent threads and
    # write barriers took ~11 % of the baseline's 100k run on 2 cores (2 alternated pairs).
    "spark.driver.extraJavaOptions": "-XX:+UseParallelGC",
    "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
    "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
    "spark.sql.shuffle.partitions": "4",
    "spark.default.parallelism": "4",
    "spark.sql.session.timeZone": "UTC",
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.driver.host": "127.0.0.1",
    "spark.driver.bindAddress": "127.0.0.1",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
    # Delta's log replay defaults to 50 partitions: far too many for a laptop.
    "spark.databricks.delta.snapshotPartitions": "2",
    "spark.databricks.delta.stats.collect": "true",
    # No optimized writes on a laptop: with 4 shuffle partitions a write makes at most a few files
    # anyway, and the extra shuffle cost ~4 s per 700k-row write (measured). Databricks clusters,
    # with many more tasks per write, enable it (`resources/databricks.py`).
    "spark.databricks.delta.optimizeWrite.enabled": "false",
    "spark.sql.adaptive.enabled": "true",
    "spark.sql.adaptive.coalescePartitions.enabled": "true",
    # Compiled query code is cached by its source; a run of the graph compiles ~700 distinct
    # classes, and the default cache of 100 kept none of them for the next run, so a warm session
    # or Spark Connect server compiled ~980 classes per run. With 2,000: 51 then 6 compilations,
    # and the same run of the bundled data took 56.8 s and 51.6 s against 67.9 s and 67.2 s
    # (`benchmarks/codegen_cache.py`: 3 runs in one session each, 2 cores; non-heap memory +7 MB).
    "spark.sql.codegen.cache.maxEntries": "2000",
    # Correctness, not speed. Spark 4.1+ lets a UNION report its children's hash partitioning so
    # that an aggregate above it skips its shuffle; under AQE with reused exchanges that report was
    # wrong here: the identity's candidate pairs on titles read from files came back 263-309 rows
    # for 108-120 pairs, each pair once per partial credit count (`test_identity.py`, files case),
    # right with this off. Upstream fixed other wrong-result cases of the same feature after
    # 4.2.0 (SPARK-59141, SPARK-58819, SPARK-59122). Off, an aggregate above a union shuffles, as in 4.0.
    # Its price: a full run of 100k titles took 106.4 and 107.0 s off against 98.7 s on (one warm
    # sample; `benchmarks.pipeline_run`, alternated, 2 cores), the same 40 tables' row counts.
    "spark.sql.unionOutputPartitioning": "false",
    # With the UI off Spark's status store still keeps the last 1,000 SQL executions, jobs and
    # stages, each execution with its plan's metrics: 20 maintenance steps of the real titles in one
    # session (`make test-maintain`) filled the 4 GB driver heap after ~1,100 s (GC overhead limit;
    # a histogram: 3.07 M SQLPlanMetric, ~0.9 GB of BitSets), and passed in 591 s with 50 of each.
    # Long-lived sessions (the Spark Connect server of `make dev`, a test worker) run thousands.
    "spark.sql.ui.retainedExecutions": "50",
    "spark.ui.retainedJobs": "50",
    "spark.ui.retainedStages": "50",
}


class SparkResource(dg.ConfigurableResource):
    """Hands out the process-wide SparkSession.

    Locally the session is built here with Delta's jars resolved
    by Ivy from Maven Central on first use (see `delta_maven_coordinate`); later JVMs load the
    jar files that resolution found (`resolved_jars`). On Databricks the cluster
    already owns a session: `use_active_session` makes this resource return it
    instead of building one.
    """

    master: str = Field(default="local[2]", description="Spark master for a local session.")
    app_name: str = "netflix-lakehouse"
    driver_memory: str = Field(default="4g", description="Only applies when this resource starts the JVM.")
    use_active_session: bool = Field(
        default=False, description="Return the cluster's session (Databricks) instead of building one."
    )
    extra_conf: dict[str, str] = Field(default_factory=dict)
    remote: Optional[str] = Field(
        default=None,
        description="A Spark Connect endpoint (sc://host:port) to use instead of a JVM of this process; "
        "if it does not answer, the run warns and starts its own.",
        repr=False,  # its URL may hold a token (Databricks Connect)
    )

    def get_session(self) -> SparkSession:
        return get_or_create_session(
            master=self.master,
            app_name=self.app_name,
            driver_memory=self.driver_memory,
            use_active_session=self.use_active_session,
            extra_conf=self.extra_conf,
            # An EnvVar (deployments.py: the URL may hold a token) is resolved by Dagster for a run;
            # a resource used outside one (a benchmark, a script) holds the variable's name instead.
            remote=self.remote.get_value() if isinstance(self.remote, dg.EnvVar) else self.remote,
        )


def answers(remote: str, timeout: float = 2.0) -> bool:
    """Whether something accepts connections at a `sc://host:port` endpoint."""
    parsed = urlparse(remote)
    try:
        with socket.create_connection((parsed.hostname or "127.0.0.1", parsed.port or 15002), timeout=timeout):
            return True
    except OSError:
        return False


def endpoint(remote: str) -> str:
    """`sc://host:port` of a Spark Connect URL without its parameters (a Databricks URL carries a
    token there): what logs and warnings show."""
    parsed = urlparse(remote)
    return f"sc://{parsed.hostname}:{parsed.port or 15002}"


def uses_tls(remote: str) -> bool:
    """Whether the Connect client talks TLS to `remote`, as pyspark's `ChannelBuilder` decides: the
    URL's parameters (`sc://host:port/;k=v;...`) set `use_ssl=true`, or a token (a `token` parameter
    or `SPARK_CONNECT_AUTHENTICATE_TOKEN`) goes to a host other than `localhost`."""
    _, _, tail = remote.partition("/;")
    params = dict(p.split("=", 1) for p in tail.split(";") if "=" in p)
    token = params.get("token", os.environ.get("SPARK_CONNECT_AUTHENTICATE_TOKEN"))
    return params.get("use_ssl", "").lower() == "true" or (token is not None and urlparse(remote).hostname != "localhost")


def speaks_grpc(remote: str, timeout: float = 3.0) -> bool:
    """Whether the endpoint completes a gRPC (HTTP/2) handshake. Checked before the first query:
    the Connect client retries an endpoint that accepts TCP but is something else (another
    service on the port) for minutes before it fails (measured with an HTTP server)."""
    import grpc

    parsed = urlparse(remote)
    target = f"{parsed.hostname or '127.0.0.1'}:{parsed.port or 15002}"
    # A TLS endpoint (Databricks Connect) never completes a plain-text handshake.
    channel = grpc.secure_channel(target, grpc.ssl_channel_credentials()) if uses_tls(remote) else grpc.insecure_channel(target)
    try:
        grpc.channel_ready_future(channel).result(timeout=timeout)
        return True
    except grpc.FutureTimeoutError:
        return False
    finally:
        channel.close()


def _remote_session(remote: str) -> Optional["SparkSession"]:
    """A Spark Connect session on `remote`, one per process; None (and a warning) if it does not answer."""
    if remote in _REMOTE:
        return _REMOTE[remote]
    if remote in _UNANSWERED:
        return None
    problem = (
        "nothing answers there" if not answers(remote)
        else "it answers but does not speak gRPC, so it is not a Spark Connect server" if not speaks_grpc(remote)
        else None
    )
    if problem is None:
        from pyspark.sql import SparkSession

        # The Connect client warns, per query, of windows without a partition, which the gold model
        # uses on purpose (global dense ranks); a classic session logs the same below ERROR.
        warnings.filterwarnings("ignore", message=".*No Partition Defined for Window operation", category=UserWarning)
        session = SparkSession.builder.remote(remote).getOrCreate()
        try:
            session.version  # a round trip: another gRPC service fails here (UNIMPLEMENTED), not in a step
            _REMOTE[remote] = session
            dg.get_dagster_logger().info(f"Spark: a Spark Connect client of {endpoint(remote)} ({REMOTE_ENV})")
            return session
        except Exception as err:  # noqa: BLE001 - any failure: the run still has its own JVM
            problem = f"it does not speak Spark Connect ({type(err).__name__})"
            # The builder switched this process to Connect mode; the fallback session is classic.
            os.environ.pop("SPARK_CONNECT_MODE_ENABLED", None)
    _UNANSWERED.add(remote)
    dg.get_dagster_logger().warning(
        f"Spark Connect at {endpoint(remote)} ({REMOTE_ENV}): {problem}. This run starts its own Spark JVM "
        "(~10 s more). `make dev` starts the server; see README, 'Warm Spark'."
    )
    return None


def get_or_create_session(
    master: str = "local[2]",
    app_name: str = "netflix-lakehouse",
    driver_memory: str = "4g",
    use_active_session: bool = False,
    extra_conf: Optional[dict[str, str]] = None,
    remote: Optional[str] = None,
) -> SparkSession:
    from pyspark.sql import SparkSession

    if remote:
        with _LOCK:
            session = _remote_session(remote)
        if session is not None:
            return session
    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    with _LOCK:
        active = SparkSession.getActiveSession()
        if active is not None:
            return active
        if use_active_session:
            return SparkSession.builder.getOrCreate()
        # Keep Spark's scratch data out of the project tree.
        builder = SparkSession.builder.master(master).appName(app_name)
        builder = builder.config("spark.driver.memory", driver_memory)
        # Python workers must run the driver's interpreter (the venv), not
        # `python3` on PATH; PySpark reads this from the environment.
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        conf = {**LOCAL_SPARK_CONF, **(extra_conf or {})}
        conf.setdefault("spark.sql.warehouse.dir", os.path.join(_scratch_dir(), "spark-warehouse"))
        for key, value in conf.items():
            builder = builder.config(key, value)
        coordinate = delta_maven_coordinate()
        given = "spark.jars" in conf
        with contextlib.nullcontext() if given else delta_jars(coordinate) as resolved:
            if resolved:
                conf["spark.jars"] = ",".join(resolved)
                builder = builder.config("spark.jars", conf["spark.jars"])
            elif not given:
                conf["spark.jars.packages"] = coordinate
                builder = builder.config("spark.jars.packages", coordinate)
            launch_quietly(
                {**conf, "spark.master": master, "spark.app.name": app_name, "spark.driver.memory": driver_memory}, coordinate
            )
            session = builder.getOrCreate()
            session.sparkContext.setLogLevel("ERROR")
            if not resolved and not given:
                remember_jars(coordinate, session.sparkContext.getConf().get("spark.jars", ""))
        return session


def interrupt_operations() -> list[str]:
    """Interrupt every Spark operation this process's sessions are running (a terminated run: its steps'
    threads cannot be interrupted, their Spark calls can, and then fail). Starts nothing: without a
    session (Spark never used, or pyspark not imported) there is nothing to interrupt."""
    if "pyspark" not in sys.modules:
        return []
    from pyspark.sql import SparkSession

    sessions = list(_REMOTE.values())
    # A classic session is active per thread, and the run's first step (in another thread) made it.
    for candidate in (SparkSession.getActiveSession(), getattr(SparkSession, "_instantiatedSession", None)):
        if candidate is not None and all(candidate is not s for s in sessions):
            sessions.append(candidate)
    interrupted: list[str] = []
    for session in sessions:
        try:
            interrupted += session.interruptAll()
        except Exception as err:  # noqa: BLE001 - a session already gone has nothing running
            dg.get_dagster_logger().warning(f"Spark: could not interrupt the session's operations ({err})")
    return interrupted


# What a local JVM prints on start that tells a user nothing (pyspark 4.2.0, Java 17; 5 lines
# on every start, and ~190 lines of Ivy's resolution on a machine's first start).
JVM_NOISE = (
    "WARNING: Using incubator modules",
    "Using Spark's default log4j profile",
    "Setting default log level to",
    "To adjust logging level use sc.setLogLevel",
    "NativeCodeLoader: Unable to load native-hadoop library",
)


def launch_quietly(conf: dict[str, str], coordinate: str) -> None:
    """Start the driver JVM with its standard error read through a filter.

    Until the JVM is up, everything it prints (Ivy's dependency resolution, the launcher's
    warnings) is held back: shown whole in the error if it never comes up, else dropped but for
    log4j's warnings and errors. After that, its lines reach this process's standard error (so
    a Dagster step's log), except `JVM_NOISE`. pyspark's `launch_gateway(popen_kwargs=...)`
    exists for this; the session then uses the gateway started here.
    """
    from pyspark import SparkConf, SparkContext
    from pyspark.java_gateway import launch_gateway

    if SparkContext._gateway is not None:
        return
    # The loopback warning: the driver binds to 127.0.0.1 anyway (LOCAL_SPARK_CONF).
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    read_end, write_end = os.pipe()
    started = threading.Event()
    held: list[str] = []

    def pump() -> None:
        with os.fdopen(read_end, "r", errors="replace") as lines:
            for line in lines:
                if not started.is_set():
                    held.append(line)
                elif not any(noise in line for noise in JVM_NOISE):
                    os.write(2, line.encode())

    reader = threading.Thread(target=pump, name="spark-jvm-stderr", daemon=True)
    reader.start()
    spark_conf = SparkConf()
    for key, value in conf.items():
        spark_conf.set(key, value)
    try:
        gateway = launch_gateway(spark_conf, popen_kwargs={"stderr": write_end})
    except Exception as error:
        os.close(write_end)
        reader.join(timeout=10)
        raise RuntimeError(
            "Spark's JVM exited before it was up. What it printed:\n"
            + "".join(held)
            + f"\nIf Ivy could not resolve {coordinate} above: the first start on a machine downloads "
            "Delta's jars from Maven Central into ~/.ivy2.5.2 (later starts read the jar files), so "
            "Maven Central must be reachable once (a proxy: the JVM's -Dhttps.proxyHost, or "
            "spark.jars.ivySettings in the spark resource's extra_conf), or set spark.jars in extra_conf "
            "to Delta's jar files on disk. If Java is the problem: Java 17 on PATH or JAVA_HOME."
        ) from error
    os.close(write_end)
    started.set()
    # Held lines in log4j's format (Ivy's are not) came from the JVM itself once it was running.
    for line in held:
        if (" WARN " in line or " ERROR " in line) and not any(noise in line for noise in JVM_NOISE):
            os.write(2, line.encode())
    SparkContext._ensure_initialized(gateway=gateway)


# Maven Central carries no Delta 4.4.1 jar (neither `delta-spark_2.13` nor
# `delta-spark_4.2_2.13`, nor delta-storage 4.4.1); 4.4.0 is the newest jar
# built for Spark 4.2. The pinned delta-spark 4.4.1 wheel is a thin Python
# wrapper over the same JVM API, so it runs on the 4.4.0 jar.
DELTA_JAR_VERSION = "4.4.0"


def delta_maven_coordinate() -> str:
    """The Delta jar for the installed pyspark (`NETFLIX_DELTA_JAR_VERSION` overrides the version).

    Delta publishes one artifact per Spark line, `delta-spark_<spark major.minor>_2.13`.
    """
    import pyspark

    spark_line = ".".join(pyspark.__version__.split(".")[:2])
    version = os.environ.get("NETFLIX_DELTA_JAR_VERSION") or DELTA_JAR_VERSION
    return f"io.delta:delta-spark_{spark_line}_2.13:{version}"


def _jar_list(coordinate: str) -> str:
    return os.path.join(_scratch_dir(), "delta-jars-" + coordinate.replace(":", "_") + ".txt")


def resolved_jars(coordinate: str) -> Optional[list[str]]:
    """The jar files Ivy resolved for `coordinate` in an earlier session, if every one is still there.

    `spark.jars.packages` makes spark-submit run an Ivy resolution at every JVM start (~3 s on
    2 cores, even with every jar cached); a run launched from the UI starts a JVM each time.
    """
    try:
        with open(_jar_list(coordinate)) as f:
            jars = [line.strip() for line in f if line.strip()]
    except OSError:
        return None
    return jars if jars and all(os.path.isfile(j) for j in jars) else None


@contextlib.contextmanager
def delta_jars(coordinate: str) -> Iterator[Optional[list[str]]]:
    """The jar files an earlier JVM resolved for `coordinate` (`resolved_jars`), or None: then the
    caller holds this machine's lock on Delta's first resolution until its block ends, in which
    its JVM resolves them by Ivy and `remember_jars` lists them.

    Why a lock: two JVMs that resolve at once into an empty Ivy cache both fail, each reading the
    other's half-downloaded files ("download failed", "unresolved dependency"); measured here with
    two sessions started together on a fresh machine, which is what `make test`'s two workers, or
    two runs launched at once, do. Under the lock the second start waits for the first and then
    reads its list: one resolution per machine."""
    jars = resolved_jars(coordinate)
    if jars:
        yield jars
        return
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock, as before
        yield None
        return
    with open(_jar_list(coordinate) + ".lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes, or the process dies
        yield resolved_jars(coordinate)


def remember_jars(coordinate: str, spark_jars: str) -> None:
    """Keep the jars Spark resolved (`spark.jars` after an Ivy resolution) for the next JVM."""
    jars = [j[len("file://"):] if j.startswith("file://") else j for j in spark_jars.split(",") if j]
    if not jars or not all(os.path.isfile(j) for j in jars):
        return
    path = _jar_list(coordinate)
    tmp = f"{path}.{os.getpid()}"
    with open(tmp, "w") as f:
        f.write("\n".join(jars) + "\n")
    os.replace(tmp, path)  # atomic: concurrent sessions never read half a list


def _scratch_dir() -> str:
    import tempfile

    path = os.path.join(tempfile.gettempdir(), "netflix-lakehouse-spark")
    os.makedirs(path, exist_ok=True)
    return path
