"""Shared fixtures: one SparkSession per test worker (`make test` runs two), a real HTTP
server on 127.0.0.1 serving the lookup files, and a real Azurite blob service."""

from __future__ import annotations

import base64
import dataclasses
import functools
import http.server
import os
import secrets
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

from netflix_assets.lib import clock

# One "today" for the whole session, pinned when it starts (unless already pinned, e.g. to replay
# a day): a module, or a run and the sensor tick that requested it, running across 00:00 UTC
# sees the same day. Set in the environment, so the processes the tests start (dagster dev,
# crash-point children) inherit it. Only "today" is pinned: clock.now() stays the real time.
os.environ.setdefault(clock.TODAY_ENV, clock.now().date().isoformat())

# The runs of the tests' lakes end with `serving/sql_catalog`, which would re-point the catalog of a
# `make serve` running on this machine at a test's temporary lake: they look for an endpoint on a
# port where nothing listens (port 1: connections are refused at once). test_serving.py starts its own.
os.environ["NETFLIX_SQL_PORT"] = "1"
# The suite's runs use its own session, whatever the developer's shell points at: the tests that need a
# Spark Connect server use the suite's (`connect_url`), and `make dev` in test_ui_e2e.py starts its own.
os.environ.pop("NETFLIX_SPARK_REMOTE", None)

DATA_DIR = Path(__file__).resolve().parent.parent / "netflix_assets" / "data"
TUTORIAL_DIR = DATA_DIR / "netflix_tutorial"
KAGGLE_TITLES = DATA_DIR / "netflix_kaggle" / "netflix_titles.csv"


@pytest.fixture(scope="session")
def spark():
    # Starting a JVM costs ~10 s: every test of a worker (and every Dagster run in
    # its tests, through SparkResource) shares this one session.
    from netflix_assets.resources.spark import get_or_create_session

    session = get_or_create_session(driver_memory="4g")
    yield session
    session.stop()


@pytest.fixture(autouse=True, scope="module")
def _forget_cached_tables():
    """The one session outlives ~40 modules, each with its own temporary lakes: drop what Spark and
    Delta cache for them (cached Datasets, Delta snapshots) when a module is done, so the driver's
    heap holds one module's tables, not the suite's. Never starts a JVM itself."""
    yield
    from pyspark import SparkContext
    from pyspark.sql import SparkSession

    session = SparkSession.getActiveSession() if SparkContext._active_spark_context is not None else None
    if session is not None:
        session.catalog.clearCache()
        session._jvm.org.apache.spark.sql.delta.DeltaLog.clearCache()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep pytest output readable
        pass


@pytest.fixture(scope="session")
def connect_url(tmp_path_factory):
    """One local Spark Connect server with Delta (`make dev`'s), shared by the tests that need
    one (the classic-vs-Connect comparison, the emulated serverless task, the crash points' killed
    runs): a JVM start each less, and their queries run on a JIT the earlier ones warmed."""
    from netflix_assets.resources import spark_connect

    port, token = spark_connect.free_port(), spark_connect.new_token()
    server = spark_connect.start(port, tmp_path_factory.mktemp("spark_connect"), token)
    try:
        spark_connect.wait_ready(server, port)
        yield spark_connect.url(port, token)
    finally:
        spark_connect.stop(server)


@pytest.fixture(scope="session")
def lookup_server():
    """Serves the bundled tutorial folder over real HTTP on loopback."""
    handler = functools.partial(_QuietHandler, directory=str(TUTORIAL_DIR))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@dataclasses.dataclass(frozen=True)
class SharedLake:
    lake: "Lakehouse"  # noqa: F821 (lakehouse.py imports this module)
    day: str
    result: object  # the run's ExecuteInProcessResult
    landed_uris: tuple[str, ...]  # the titles files landed, in order


@pytest.fixture(scope="session")
def tutorial_lake(spark, lookup_server, tmp_path_factory) -> SharedLake:
    """The bundled tutorial titles landed and built by the whole job for today, once per session:
    a full pipeline run costs ~100 s here, so the modules that only READ such a lake
    (test_gold_model.py, test_independent_model.py) share this one. Never write to it."""
    from netflix_assets_tests.lakehouse import Lakehouse

    lake = Lakehouse.create(tmp_path_factory.mktemp("tutorial_lake"), lookup_server)
    uri = lake.land(TUTORIAL_DIR / "netflix_titles.csv", "netflix_titles.csv")
    day = today_iso()
    return SharedLake(lake, day, lake.run(day), (uri,))


@pytest.fixture(scope="session")
def both_exports_lake(spark, lookup_server, tmp_path_factory) -> SharedLake:
    """The tutorial titles and the Kaggle titles landed together and built by one run of the whole
    job for today, once per session (the 15,043-title run costs minutes on 2 cores): the baseline
    comparison (test_baseline.py) and the independent model (test_independent_model.py) only READ
    it. Never write to it."""
    from netflix_assets_tests.lakehouse import Lakehouse

    lake = Lakehouse.create(tmp_path_factory.mktemp("both_exports_lake"), lookup_server)
    uris = (lake.land(TUTORIAL_DIR / "netflix_titles.csv", "netflix_titles.csv"),
            lake.land(KAGGLE_TITLES, "kaggle/netflix_titles.csv"))
    day = today_iso()
    return SharedLake(lake, day, lake.run(day), uris)


def today_iso() -> str:
    """The session's today (`clock.today()`, pinned above), as a partition key."""
    return clock.today().isoformat()


@pytest.fixture
def today() -> str:
    return today_iso()


AZURITE_BIN = Path(__file__).resolve().parent.parent / "tools" / "azurite" / "node_modules" / ".bin" / "azurite-blob"


@dataclasses.dataclass(frozen=True)
class Azurite:
    blob_endpoint: str
    account_name: str
    account_key: str

    def env(self, container: str, prefix: str) -> dict[str, str]:
        """The environment a deployment would set for a landing zone in this account."""
        return {
            "NETFLIX_LANDING_URI": f"abfs://{container}/{prefix}",
            "NETFLIX_LANDING_ACCOUNT": self.account_name,
            "NETFLIX_LANDING_ACCOUNT_KEY": self.account_key,
            "NETFLIX_LANDING_BLOB_ENDPOINT": self.blob_endpoint,
        }


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def azurite(tmp_path_factory):
    """A real Azurite blob service on 127.0.0.1 (installed by `make test` with npm),
    with an account whose key is generated for this session."""
    if not AZURITE_BIN.exists():
        message = f"Azurite is not installed ({AZURITE_BIN}): run `make test`, which installs it with npm"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    port = _free_port()
    name, key = "netflixtest", base64.b64encode(secrets.token_bytes(32)).decode()
    env = {**os.environ, "AZURITE_ACCOUNTS": f"{name}:{key}"}
    command = [
        str(AZURITE_BIN), "--blobHost", "127.0.0.1", "--blobPort", str(port),
        "--location", str(tmp_path_factory.mktemp("azurite")), "--silent", "--disableTelemetry", "--skipApiVersionCheck",
    ]
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                raise RuntimeError(f"Azurite did not start: {process.stderr.read().decode()[-2000:]}")
            time.sleep(0.1)
    yield Azurite(f"http://127.0.0.1:{port}/{name}", name, key)
    os.killpg(process.pid, signal.SIGTERM)
    process.wait(timeout=10)


# `make test` runs two xdist workers: each group of tests runs whole on one worker, so a module-scoped
# lake is built once (`pytest_xdist_make_scheduler`). A module is a group, or one per value of its
# module-scoped parameter where that value leads the test ids (the ingestion scenario builds a local
# and an Azurite lake: one on each worker). The modules reading the session-built lakes share one
# group, which builds each lake once. (xdist's own `loadgroup` marks do not work with pytest 9: they
# rewrite a node id attribute pytest no longer reads.)
SHARED_LAKE_MODULES = {
    "netflix_assets_tests.benchmarks.test_baseline",
    "netflix_assets_tests.gold.test_gold_model",
    "netflix_assets_tests.gold.test_independent_model",
    "netflix_assets_tests.pipes.test_databricks_pipes",
    "netflix_assets_tests.resources.test_spark_connect",
    "netflix_assets_tests.serving.test_serving",
    "netflix_assets_tests.test_table_digests",
    "netflix_assets_tests.transforms.test_maintain",
}
SPLIT_BY_PARAMETER = {"netflix_assets_tests.test_ingestion_scenario", "netflix_assets_tests.bronze.test_poison_files"}
# The longest groups start first, so the two workers end together (seconds in a CI run on 2 cores,
# one worker); the rest follow in collection order.
SLOWEST_FIRST = [
    "shared_lakes",  # ~600 s
    "netflix_assets_tests.lib.test_incremental_refresh",  # 467 s
    "netflix_assets_tests.test_ingestion_scenario[local]",  # 270 s
    "netflix_assets_tests.test_ingestion_scenario[azurite]",  # 276 s
    "netflix_assets_tests.test_ui_e2e",  # 234 s
    "netflix_assets_tests.lib.test_crash_points",  # 208 s alone, its Spark Connect server started
    "netflix_assets_tests.test_demo",  # 149 s
    "netflix_assets_tests.resources.test_databricks_step_launcher",  # 140 s
    "netflix_assets_tests.test_pipeline",  # 140 s
    "netflix_assets_tests.gold.test_title_history",  # 120 s
]


def xdist_group(nodeid: str) -> str:
    path, _, test = nodeid.partition("::")
    module = path.removesuffix(".py").replace("/", ".")
    if module in SHARED_LAKE_MODULES:
        return "shared_lakes"
    value = test.partition("[")[2].split("-")[0].removesuffix("]")
    return f"{module}[{value}]" if module in SPLIT_BY_PARAMETER and value else module


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    from xdist.scheduler import LoadScopeScheduling

    class ByGroup(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return xdist_group(nodeid)

    return ByGroup(config, log)


def pytest_collection_modifyitems(config, items):
    rank = {group: i for i, group in enumerate(SLOWEST_FIRST)}
    items.sort(key=lambda item: rank.get(xdist_group(item.nodeid), len(rank)))  # stable: collection order within
