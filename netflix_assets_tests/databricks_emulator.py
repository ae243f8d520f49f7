"""A local emulator of the Databricks REST API, for tests of the Databricks step launcher
(and of `PipesDatabricksClient`, see test_databricks_pipes.py).

`DatabricksEmulator` serves the parts of the workspace API that dagster-databricks'
`databricks_pyspark_step_launcher` (through databricks-sdk 0.60) calls, on
`http://127.0.0.1:<port>`, with the standard library only:

* DBFS (`/api/2.0/dbfs/...`): create / add-block / close / put / read / get-status /
  list / mkdirs / move / delete, stored under `<root_dir>/dbfs`;
* Jobs (`/api/2.2/jobs/runs/...`, also `/api/2.1`): submit / get / get-output / cancel;
* Clusters (`/api/2.1/clusters/get`, also `/api/2.0`) and job/cluster permissions;
* Files (`/api/2.0/fs/files/Volumes/...`, `/api/2.0/fs/directories/Volumes/...`): Unity Catalog
  volumes, stored under `<root_dir>/volumes` (what `PipesDatabricksServerlessClient` uses).

Requests are validated the way Databricks validates them (bearer token, one task
with a `task_key`, a `spark_python_task` on DBFS or a volume, a known `existing_cluster_id`,
a well-formed `new_cluster` or a serverless `environment_key`, well-formed `libraries`), and errors come back as
Databricks does: `{"error_code": ..., "message": ...}` with the same HTTP status,
which databricks-sdk turns into its typed exceptions.

A submitted run executes its `python_file` in a subprocess of `runtime_python`,
the way a Databricks driver does:

* `__name__ == "__main__"`, `sys.argv = [python_file, *parameters]`, with every
  `/dbfs/...` parameter rewritten to the emulator's DBFS directory;
* the globals the runtime provides: `sc`, `spark` (lazy: the JVM starts on first
  attribute access only, through `spark_session_factory`) and `dbutils`
  (`dbutils.secrets.get` reads the emulator's `secrets`, `dbutils.fs` the DBFS);
* the `/dbfs` mount for Python file APIs (`open`, `os.stat`, `os.listdir`, ...: see
  `_mount`), and the `spark.databricks.clusterUsageTags.*` confs of the session;
  `SparkSession.builder.getOrCreate()` / `getActiveSession()` return that same
  runtime session (as on a cluster, where the session already exists);
* the cluster's libraries only: the process may import the standard library, the
  `runtime_libraries` (a Databricks Runtime base set) and the run's `libraries`,
  each with its transitive requirements (from the installed metadata, extras only
  when requested). Any other installed distribution fails to import with
  `ModuleNotFoundError: No module named 'x' (library not installed on the cluster)`,
  and `importlib.metadata` (versions, entry points) lists the cluster's distributions only.
  Code from directories that exist only on the test machine (the repository, an
  editable install) is not importable either: the code must travel in the
  uploaded zip, as it must on a real cluster;
* "installing" a pypi library fails the run (`INTERNAL_ERROR`, "Library installation
  failed") when its version specifier excludes the version installed here: pip on
  the cluster would install another version than the one the tests ran;
* a minimal environment (`passthrough_env` plus the cluster's `spark_env_vars`),
  `DATABRICKS_RUNTIME_VERSION` set, and the runtime's native SDK authentication.

Serverless runs (a task with an `environment_key`, when the emulator is given
`serverless_remote`): the environment's `dependencies` are the libraries; the driver has
no `sc`, no `/dbfs` and no JVM of its own: `spark` is a Spark Connect session against
`serverless_remote` (a local `SparkConnectServer`), as Databricks serverless compute is.

Runs go PENDING (library installation) -> RUNNING -> TERMINATED with `result_state`
SUCCESS / FAILED / CANCELED / TIMEDOUT; a failed run's `state_message` carries the
exception that ended it. The driver's stdout/stderr are captured under
`<root_dir>/runs/<run_id>/`.

The emulator process itself uses the standard library only; the emulated
`pip install` (run inside `runtime_python`) uses `packaging`, as pip does.

Limitations: one task per submission, `spark_python_task` on DBFS or a volume only; every run
starts its own JVM (a real all-purpose cluster shares one); `/dbfs/...` paths
resolve for the driver's Python file APIs only (a stand-in for the FUSE mount, see
`_mount`: not for the JVM, native code or subprocesses);
maven libraries are validated but not resolved (jar libraries reach the session as
`spark.jars`); Spark's Python worker processes are not guarded.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import http.server
import itertools
import json
import os
import posixpath
import random
import re
import shutil
import signal
import string
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Optional, Sequence
from urllib.parse import parse_qs, unquote, urlsplit

__all__ = [
    "DBR_BASE_DISTRIBUTIONS",
    "DBR_SPARK_VERSION",
    "DEFAULT_CLUSTER_ID",
    "DatabricksEmulator",
    "EmulatedRun",
    "EmulatorRequest",
]

REPO_ROOT = Path(__file__).resolve().parents[1]

DEFAULT_CLUSTER_ID = "0101-000000-emulator"
DBR_SPARK_VERSION = "17.3.x-scala2.13"

# The Python distributions of the Databricks Runtime image a run can import
# without listing them in `libraries`: a realistic subset of the "Installed Python
# libraries" of the Databricks Runtime 17.3 LTS release notes, plus what the runtime
# itself puts on the driver's path (pyspark, its py4j, Delta Lake's `delta` module).
# Names are PyPI distribution names; entries not installed in `runtime_python` are
# ignored, and the set is closed under the installed requirements of its members.
DBR_BASE_DISTRIBUTIONS: frozenset[str] = frozenset(
    {
        # Provided by the runtime rather than pip.
        "pyspark",
        "py4j",
        "delta-spark",
        # Packaging toolchain.
        "pip",
        "setuptools",
        "wheel",
        "packaging",
        "virtualenv",
        "distlib",
        "filelock",
        "platformdirs",
        # Data / science stack.
        "numpy",
        "pandas",
        "pyarrow",
        "scipy",
        "scikit-learn",
        "statsmodels",
        "patsy",
        "joblib",
        "threadpoolctl",
        "matplotlib",
        "contourpy",
        "cycler",
        "fonttools",
        "kiwisolver",
        "pillow",
        "pyparsing",
        "seaborn",
        "plotly",
        # Common utilities.
        "python-dateutil",
        "pytz",
        "tzdata",
        "six",
        "typing-extensions",
        "typing-inspection",
        "attrs",
        "cachetools",
        "click",
        "cloudpickle",
        "decorator",
        "deprecated",
        "wrapt",
        "importlib-metadata",
        "zipp",
        "more-itertools",
        "jinja2",
        "markupsafe",
        "pyyaml",
        "tenacity",
        "protobuf",
        "grpcio",
        "grpcio-status",
        "googleapis-common-protos",
        "pydantic",
        "pydantic-core",
        "annotated-types",
        "rich",
        "pygments",
        "markdown-it-py",
        "mdurl",
        "sqlparse",
        "psutil",
        "ujson",
        "tomli",
        "tornado",
        # HTTP and auth.
        "requests",
        "urllib3",
        "certifi",
        "idna",
        "charset-normalizer",
        "chardet",
        "httpx",
        "httpcore",
        "h11",
        "anyio",
        "sniffio",
        "cryptography",
        "cffi",
        "pycparser",
        "pyjwt",
        "oauthlib",
        "rsa",
        "pyasn1",
        "pyasn1-modules",
        "google-auth",
        "msal",
        "msal-extensions",
        "isodate",
        # Cloud SDKs the runtime ships.
        "databricks-sdk",
        "boto3",
        "botocore",
        "s3transfer",
        "jmespath",
        "azure-core",
        "azure-common",
        "azure-identity",
        "azure-storage-blob",
        "azure-storage-file-datalake",
        "mlflow-skinny",
    }
)

# Environment variables of the test process a cluster's driver also has (a
# Databricks driver does not inherit the caller's environment).
DEFAULT_PASSTHROUGH_ENV: tuple[str, ...] = (
    "PATH",
    "HOME",
    "USER",
    "LOGNAME",
    "LANG",
    "LC_ALL",
    "LC_CTYPE",
    "TZ",
    "JAVA_HOME",
    "SPARK_HOME",
    "HADOOP_HOME",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "REQUESTS_CA_BUNDLE",
    "CURL_CA_BUNDLE",
    "NETFLIX_DELTA_JAR_VERSION",
)

# What a serverless environment adds to the runtime set: the Spark Connect client's own
# requirements (`pyspark[connect]`), which serverless drivers have preinstalled.
SERVERLESS_EXTRA_DISTRIBUTIONS: frozenset[str] = frozenset({"zstandard"})

DEFAULT_SPARK_SESSION_FACTORY = f"{REPO_ROOT / 'netflix_assets' / 'resources' / 'spark.py'}:get_or_create_session"

_MAX_BLOCK = 1024 * 1024  # DBFS add-block / put / read limit (1 MB)
_DEFAULT_READ = 512 * 1024
_LIBRARY_KINDS = ("jar", "egg", "whl", "pypi", "maven", "cran", "requirements")
_TASK_KINDS = (
    "notebook_task",
    "spark_python_task",
    "spark_jar_task",
    "spark_submit_task",
    "python_wheel_task",
    "sql_task",
    "dbt_task",
    "pipeline_task",
    "run_job_task",
    "condition_task",
    "for_each_task",
    "clean_rooms_notebook_task",
    "dashboard_task",
    "power_bi_task",
    "gen_ai_compute_task",
)
_SPARK_VERSION_RE = re.compile(r"^(\d+)\.(\d+)\.x(-[a-z0-9]+)*-scala\d+\.\d+$")
_TERMINAL = ("TERMINATED", "INTERNAL_ERROR", "SKIPPED")
_EXIT_LIBRARY_ERROR = 3


class DatabricksApiError(Exception):
    """An error answered Databricks-style: HTTP status plus `{"error_code", "message"}`."""

    def __init__(self, status: int, error_code: str, message: str):
        super().__init__(f"{error_code}: {message}")
        self.status = status
        self.error_code = error_code
        self.message = message


def _invalid(message: str) -> DatabricksApiError:
    return DatabricksApiError(400, "INVALID_PARAMETER_VALUE", message)


@dataclasses.dataclass(frozen=True)
class EmulatorRequest:
    """One request the emulator answered (`body` is the JSON body, `query` the query string)."""

    method: str
    path: str
    query: Mapping[str, str]
    body: Optional[Mapping[str, Any]]
    status: int
    error_code: Optional[str] = None

    @property
    def params(self) -> Mapping[str, Any]:
        return {**self.query, **(self.body or {})}


@dataclasses.dataclass
class EmulatedRun:
    """A run submitted through `runs/submit` (ids, request body, state, driver process and logs)."""

    run_id: int
    task_run_id: int
    job_id: int
    run_name: str
    submit_body: Mapping[str, Any]
    task: Mapping[str, Any]
    cluster_id: str
    new_cluster: Optional[Mapping[str, Any]]
    run_dir: Path
    environment: Optional[Mapping[str, Any]] = None  # a serverless run's `environments` entry
    timeout_seconds: int = 0
    life_cycle_state: str = "PENDING"
    result_state: Optional[str] = None
    state_message: str = ""
    termination_code: Optional[str] = None
    termination_type: Optional[str] = None
    user_cancelled_or_timedout: bool = False
    state_history: list[tuple[str, Optional[str], float]] = dataclasses.field(default_factory=list)
    start_time: int = 0
    running_time: Optional[int] = None
    end_time: Optional[int] = None
    returncode: Optional[int] = None
    error: Optional[str] = None
    error_trace: Optional[str] = None
    pid: Optional[int] = None
    cancel_requested: bool = False
    done: threading.Event = dataclasses.field(default_factory=threading.Event)

    @property
    def stdout_path(self) -> Path:
        return self.run_dir / "stdout"

    @property
    def stderr_path(self) -> Path:
        return self.run_dir / "stderr"

    def stdout(self) -> str:
        return self.stdout_path.read_text(errors="replace") if self.stdout_path.exists() else ""

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace") if self.stderr_path.exists() else ""

    @property
    def installed_distributions(self) -> list[str]:
        """The distributions the emulated cluster had for this run (after library installation)."""
        path = self.run_dir / "installed-libraries.json"
        return json.loads(path.read_text()) if path.exists() else []

    @property
    def spark_started(self) -> bool:
        """Whether the run's driver made its SparkSession (a JVM; on serverless, a Connect client)."""
        return (self.run_dir / "spark-started").exists()

    @property
    def spark_session_module(self) -> Optional[str]:
        """The module of the driver's session class (`pyspark.sql.connect.session` for a Connect client)."""
        marker = self.run_dir / "spark-started"
        return marker.read_text() if marker.exists() else None

    @property
    def life_cycle_states(self) -> list[str]:
        return [state for state, _, _ in self.state_history]

    @property
    def terminated(self) -> bool:
        return self.life_cycle_state in _TERMINAL


class DatabricksEmulator:
    """A Databricks workspace on 127.0.0.1 for tests (see the module docstring).

    Args:
        root_dir: where DBFS (`root_dir/dbfs`) and the runs' files (`root_dir/runs`) live.
        secrets: `{(scope, key): value}` served by `dbutils.secrets.get` on the cluster.
        clusters: the existing (all-purpose) clusters: ids, or `{cluster_id: spec}` where a
            spec may hold `spark_version`, `cluster_name`, `spark_conf`, `spark_env_vars`,
            `cluster_log_conf`. Defaults to one cluster, `DEFAULT_CLUSTER_ID`.
        token: if set, the only bearer token accepted; otherwise any non-empty token is.
        runtime_python: the interpreter of the emulated driver.
        runtime_libraries: the Databricks Runtime's preinstalled distributions.
        enforce_cluster_libraries: False lets a run import whatever `runtime_python` has.
        spark_session_factory: `"<module or file.py>:<function>"` building the runtime's
            SparkSession on first use of `sc` / `spark` (called with `spark_session_kwargs`,
            plus the cluster's `spark_conf` as `extra_conf` when the function accepts it).
        spark_session_kwargs: keyword arguments for the factory.
        passthrough_env: variables copied from this process into the driver's environment.
        cluster_env: extra variables for every driver.
        serverless_remote: the Spark Connect URL (`sc://localhost:<port>/;token=...`) of serverless runs'
            `spark`; None: the workspace has no serverless compute (such a task is refused).
    """

    def __init__(
        self,
        root_dir: os.PathLike[str] | str,
        secrets: Optional[Mapping[tuple[str, str], str]] = None,
        *,
        clusters: Optional[Mapping[str, Mapping[str, Any]] | Iterable[str]] = None,
        token: Optional[str] = None,
        runtime_python: str = sys.executable,
        runtime_libraries: Iterable[str] = DBR_BASE_DISTRIBUTIONS,
        enforce_cluster_libraries: bool = True,
        spark_session_factory: str = DEFAULT_SPARK_SESSION_FACTORY,
        spark_session_kwargs: Optional[Mapping[str, Any]] = None,
        passthrough_env: Sequence[str] = DEFAULT_PASSTHROUGH_ENV,
        cluster_env: Optional[Mapping[str, str]] = None,
        serverless_remote: Optional[str] = None,
    ):
        self.root_dir = Path(root_dir).resolve()
        self.dbfs_root = self.root_dir / "dbfs"
        self.volumes_root = self.root_dir / "volumes"
        self.serverless_remote = serverless_remote
        self.runs_root = self.root_dir / "runs"
        self.secrets: dict[tuple[str, str], str] = dict(secrets or {})
        self.token = token
        self.runtime_python = runtime_python
        self.runtime_libraries = frozenset(runtime_libraries)
        self.enforce_cluster_libraries = enforce_cluster_libraries
        self.spark_session_factory = spark_session_factory
        self.spark_session_kwargs = dict(
            spark_session_kwargs if spark_session_kwargs is not None else {"master": "local[2]", "driver_memory": "2g"}
        )
        self.passthrough_env = tuple(passthrough_env)
        self.cluster_env = dict(cluster_env or {})

        self.clusters: dict[str, dict[str, Any]] = {}
        if clusters is None:
            clusters = [DEFAULT_CLUSTER_ID]
        if isinstance(clusters, Mapping):
            for cluster_id, spec in clusters.items():
                self.add_cluster(cluster_id, **dict(spec))
        else:
            for cluster_id in clusters:
                self.add_cluster(cluster_id)

        self.requests: list[EmulatorRequest] = []
        self.runs: dict[int, EmulatedRun] = {}
        self.permissions: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
        self._task_runs: dict[int, EmulatedRun] = {}
        self._idempotency: dict[str, int] = {}
        self._handles: dict[int, Path] = {}
        self._processes: dict[int, subprocess.Popen] = {}
        self._ids = itertools.count(1_000_001)
        self._handle_ids = itertools.count(1)
        self._run_tokens: set[str] = set()  # the drivers' own credentials (runtime native auth)
        self._job_ids = itertools.count(9_001)
        self._lock = threading.RLock()
        self._server: Optional[http.server.ThreadingHTTPServer] = None
        self._thread: Optional[threading.Thread] = None
        self._routes: dict[tuple[str, str], Callable[[Mapping[str, Any]], Mapping[str, Any]]] = {}
        for version in ("2.1", "2.2"):
            self._routes[("POST", f"/api/{version}/jobs/runs/submit")] = self._runs_submit
            self._routes[("GET", f"/api/{version}/jobs/runs/get")] = self._runs_get
            self._routes[("GET", f"/api/{version}/jobs/runs/get-output")] = self._runs_get_output
            self._routes[("POST", f"/api/{version}/jobs/runs/cancel")] = self._runs_cancel
        for version in ("2.0", "2.1"):
            self._routes[("GET", f"/api/{version}/clusters/get")] = self._clusters_get
        for name, method in (
            ("create", "POST"),
            ("add-block", "POST"),
            ("close", "POST"),
            ("put", "POST"),
            ("read", "GET"),
            ("get-status", "GET"),
            ("list", "GET"),
            ("mkdirs", "POST"),
            ("move", "POST"),
            ("delete", "POST"),
        ):
            self._routes[(method, f"/api/2.0/dbfs/{name}")] = getattr(self, "_dbfs_" + name.replace("-", "_"))

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> "DatabricksEmulator":
        if self._server is not None:
            return self
        self.dbfs_root.mkdir(parents=True, exist_ok=True)
        self.volumes_root.mkdir(parents=True, exist_ok=True)
        self.runs_root.mkdir(parents=True, exist_ok=True)
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        server.daemon_threads = True
        server.emulator = self  # type: ignore[attr-defined]
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="databricks-emulator", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Kills the runs still going and stops serving."""
        with self._lock:
            running = [run for run in self.runs.values() if not run.terminated]
        for run in running:
            self._cancel(run)
        for run in running:
            run.done.wait(15)
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> "DatabricksEmulator":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the emulator is not started")
        return self._server.server_address[1]

    @property
    def host(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def cluster_id(self) -> str:
        """The first existing cluster (the default one unless `clusters` was given)."""
        return next(cid for cid, spec in self.clusters.items() if not spec.get("job_cluster"))

    def add_cluster(
        self,
        cluster_id: str,
        *,
        spark_version: str = DBR_SPARK_VERSION,
        cluster_name: Optional[str] = None,
        spark_conf: Optional[Mapping[str, str]] = None,
        spark_env_vars: Optional[Mapping[str, str]] = None,
        cluster_log_conf: Optional[Mapping[str, Any]] = None,
        **extra: Any,
    ) -> None:
        """Registers an existing (all-purpose, RUNNING) cluster a run may name in `existing_cluster_id`."""
        self.clusters[cluster_id] = {
            **extra,
            "cluster_id": cluster_id,
            "cluster_name": cluster_name or f"emulated-{cluster_id}",
            "spark_version": spark_version,
            "spark_conf": dict(spark_conf or {}),
            "spark_env_vars": dict(spark_env_vars or {}),
            "node_type_id": extra.get("node_type_id", "Standard_D4ds_v5"),
            "num_workers": extra.get("num_workers", 0),
            "state": "RUNNING",
            "cluster_source": "UI",
            **({"cluster_log_conf": dict(cluster_log_conf)} if cluster_log_conf else {}),
        }

    # ------------------------------------------------------------------ helpers for tests

    def requests_to(self, endpoint: str, method: Optional[str] = None) -> list[EmulatorRequest]:
        """The requests whose path ends with `endpoint` (e.g. "dbfs/create", "jobs/runs/submit")."""
        with self._lock:
            return [
                r for r in self.requests if r.path.endswith(endpoint) and (method is None or r.method == method)
            ]

    def run(self, run_id: int) -> EmulatedRun:
        return self.runs[run_id]

    def wait_for_run(self, run_id: int, timeout: float = 120) -> EmulatedRun:
        run = self.runs[run_id]
        if not run.done.wait(timeout):
            raise TimeoutError(f"run {run_id} still {run.life_cycle_state} after {timeout}s")
        return run

    def _file_local_path(self, path: str) -> Path:
        return self.volume_local_path(path) if path.startswith("/Volumes/") else self.dbfs_local_path(path)

    def dbfs_local_path(self, path: str) -> Path:
        """The file behind a DBFS path (`dbfs:/x`, `/x`) or a driver-local `/dbfs/x` path."""
        if path.startswith("/dbfs/") or path == "/dbfs":
            return self._dbfs_path("/" + path[len("/dbfs") :].lstrip("/"))
        return self._dbfs_path(path)

    # ------------------------------------------------------------------ HTTP plumbing

    def _handle(self, method: str, raw_path: str, headers: Any, raw_body: bytes) -> tuple[int, Any]:
        """(status, payload): a JSON-able mapping, or the raw bytes of a Files API download."""
        parts = urlsplit(raw_path)
        path = unquote(parts.path)
        query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        body: Optional[dict[str, Any]] = None
        status, error_code = 200, None
        files = re.fullmatch(r"/api/2\.0/fs/(files|directories)(/.*)", path)
        try:
            if raw_body.strip() and not files:  # the Files API's bodies are raw bytes
                try:
                    body = json.loads(raw_body)
                except ValueError:
                    raise DatabricksApiError(
                        400, "MALFORMED_REQUEST", "Invalid JSON given in the body of the request - failed to parse"
                    )
                if not isinstance(body, dict):
                    raise DatabricksApiError(
                        400, "MALFORMED_REQUEST", "Invalid JSON given in the body of the request - expected a map"
                    )
            self._authenticate(headers)
            route = self._routes.get((method, path))
            match = re.fullmatch(r"/api/2\.0/permissions/(jobs|clusters)/([^/]+)", path)
            if files:
                payload = self._files(method, files.group(1), files.group(2), query, raw_body)
            elif route is None and match and method in ("GET", "PATCH", "PUT"):
                payload = self._permissions(method, match.group(1), match.group(2), body or {})
            elif route is None:
                raise DatabricksApiError(404, "ENDPOINT_NOT_FOUND", f"No API found for '{method} {path}'")
            else:
                payload = route({**query, **(body or {})})
        except DatabricksApiError as e:
            status, error_code = e.status, e.error_code
            payload = {"error_code": e.error_code, "message": e.message}
        except Exception as e:  # a bug in the emulator: answer like an internal error
            status, error_code = 500, "INTERNAL_ERROR"
            payload = {"error_code": "INTERNAL_ERROR", "message": f"emulator error: {type(e).__name__}: {e}"}
        with self._lock:
            self.requests.append(EmulatorRequest(method, path, query, body, status, error_code))
        return status, payload

    def _authenticate(self, headers: Any) -> None:
        auth = headers.get("Authorization") or ""
        scheme, _, credential = auth.partition(" ")
        if scheme.lower() != "bearer" or not credential.strip():
            raise DatabricksApiError(
                401, "UNAUTHENTICATED", "Credential was not sent or was of an unsupported type for this API."
            )
        if self.token is not None and credential.strip() not in (self.token, *self._run_tokens):
            raise DatabricksApiError(403, "PERMISSION_DENIED", "Invalid access token.")

    # ------------------------------------------------------------------ Files API (volumes)

    def volume_local_path(self, path: str) -> Path:
        """The file behind a volume path `/Volumes/<catalog>/<schema>/<volume>/...`."""
        if not isinstance(path, str) or not path.startswith("/Volumes/"):
            raise _invalid(f"Path {path!r} is not a Unity Catalog volume path (/Volumes/<catalog>/<schema>/<volume>/...)")
        relative = posixpath.normpath(path).lstrip("/").split("/")[1:]
        if len(relative) < 3 or ".." in relative:
            raise _invalid(f"Path {path!r} does not name a file or directory inside a volume")
        return self.volumes_root.joinpath(*relative)

    def _files(self, method: str, kind: str, path: str, query: Mapping[str, str], data: bytes) -> Any:
        local = self.volume_local_path(path)
        missing = DatabricksApiError(404, "NOT_FOUND", f"The file or directory {path} does not exist.")
        if kind == "files":
            if method == "PUT":
                if local.is_dir():
                    raise DatabricksApiError(409, "ALREADY_EXISTS", f"{path} is a directory.")
                if local.exists() and query.get("overwrite", "false").lower() != "true":
                    raise DatabricksApiError(409, "ALREADY_EXISTS", f"The file {path} already exists.")
                local.parent.mkdir(parents=True, exist_ok=True)  # parents are created implicitly
                local.write_bytes(data)
                return {}
            if not local.is_file():
                raise missing
            if method in ("GET", "HEAD"):  # HEAD: the file's Content-Length, no body (as the Files API answers)
                return local.read_bytes()
            if method == "DELETE":
                local.unlink()
                return {}
        else:
            if method == "PUT":
                if local.is_file():
                    raise DatabricksApiError(409, "ALREADY_EXISTS", f"{path} is a file.")
                local.mkdir(parents=True, exist_ok=True)
                return {}
            if not local.is_dir():
                raise missing
            if method == "HEAD":
                return {}
            if method == "GET":
                entries = sorted(local.iterdir())
                return {
                    "contents": [
                        {
                            "path": f"{path.rstrip('/')}/{e.name}",
                            "name": e.name,
                            "is_directory": e.is_dir(),
                            **({} if e.is_dir() else {"file_size": e.stat().st_size}),
                            "last_modified": int(e.stat().st_mtime * 1000),
                        }
                        for e in entries
                    ]
                }
            if method == "DELETE":
                if any(local.iterdir()):
                    raise DatabricksApiError(400, "DIRECTORY_NOT_EMPTY", f"The directory {path} is not empty.")
                local.rmdir()
                return {}
        raise DatabricksApiError(404, "ENDPOINT_NOT_FOUND", f"No API found for '{method} /api/2.0/fs/{kind}{path}'")

    # ------------------------------------------------------------------ DBFS

    def _dbfs_path(self, path: Any) -> Path:
        if not isinstance(path, str) or not path:
            raise _invalid("Path must be a non-empty string")
        if path.startswith("dbfs:"):
            path = path[len("dbfs:") :]
            path = "/" + path.lstrip("/")
        if not path.startswith("/"):
            raise _invalid(f"Path must be absolute: {path}")
        normalized = posixpath.normpath("/" + path.lstrip("/"))
        relative = normalized.lstrip("/")
        if relative.startswith(".."):
            raise _invalid(f"Invalid path: {path}")
        return self.dbfs_root / relative if relative else self.dbfs_root

    @staticmethod
    def _display(path: Path, root: Path) -> str:
        return "/" + path.relative_to(root).as_posix() if path != root else "/"

    def _missing(self, path: Any) -> DatabricksApiError:
        return DatabricksApiError(404, "RESOURCE_DOES_NOT_EXIST", f"No file or directory exists on path {path}.")

    def _file_info(self, local: Path) -> dict[str, Any]:
        stat = local.stat()
        return {
            "path": self._display(local, self.dbfs_root),
            "is_dir": local.is_dir(),
            "file_size": 0 if local.is_dir() else stat.st_size,
            "modification_time": int(stat.st_mtime * 1000),
        }

    @staticmethod
    def _b64(data: Any, what: str = "data") -> bytes:
        if not isinstance(data, str):
            raise _invalid(f"Missing required field: {what}")
        try:
            return base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError):
            raise _invalid(f"The {what} is not valid base64")

    def _dbfs_create(self, p: Mapping[str, Any]) -> Mapping[str, Any]:
        local = self._dbfs_path(p.get("path"))
        with self._lock:
            self._new_file(local, p, b"")
            handle = next(self._handle_ids)
            self._handles[handle] = local
        return {"handle": handle}

    def _handle_path(self, p: Mapping[str, Any]) -> tuple[int, Path]:
        handle = _as_int(p.get("handle"), "handle")
        local = self._handles.get(handle)
        if local is None:
            raise DatabricksApiError(404, "RESOURCE_DOES_NOT_EXIST", f"Handle {handle} does not exist.")
        return handle, local

    def _dbfs_add_block(self, p: Mapping[str, Any]) -> Mapping[str, Any]:
        _, local = self._handle_path(p)
        data = self._b64(p.get("data"))
        if len(data) > _MAX_BLOCK:
            raise DatabricksApiError(400, "MAX_BLOCK_SIZE_EXCEEDED", "The block size exceeds the 1 MB limit.")
        with self._lock, local.open("ab") as fh:
            fh.write(data)
        return {}

    def _dbfs_close(self, p: Mapping[str, Any]) -> Mapping[str, Any]:
        handle, _ = self._handle_path(p)
        with self._lock:
            self._handles.pop(handle, None)
        return {}

    def _dbfs_put(self, p: Mapping[str, Any]) -> Mapping[str, Any]:
        local = self._dbfs_path(p.get("path"))
        if "contents" not in p:
            raise _invalid("The emulator supports put with base64 `contents` only (no multipart upload)")
        data = self._b64(p.get("contents"), "contents")
        if len(data) > _MAX_BLOCK:
            raise DatabricksApiError(
                400, "MAX_BLOCK_SIZE_EXCEEDED", "File uploads through `contents` are limited to 1 MB; use create/add-block/close."
            )
        with self._lock:
            self._new_file(local, p, data)
        return {}

    def _new_file(self, local: Path, p: Mapping[str, Any], data: bytes) -> None:
        """create/put: refuse an existing path unless `overwrite`, as DBFS does. Caller holds the lock."""
        if local.exists() and (local.is_dir() or not _truthy(p.get("overwrite"))):
            raise DatabricksApiError(
                400, "RESOURCE_ALREADY_EXISTS", f"A file or directory already exists at the input path {p['path']}."
            )
        self._check_parent_dirs(local)
        local.parent.mkdir(parents=True, exist_ok=True)
        local.write_bytes(data)

    def _check_parent_dirs(self, local: Path) -> None:
        for parent in local.parents:
            if parent == self.dbfs_root or self.dbfs_root not in parent.parents:
                break
            if parent.exists() and not parent.is_dir():
                raise DatabricksApiError(
                    400, "RESOURCE_ALREADY_EXISTS", f"A file exists at {self._display(parent, self.dbfs_root)}."
                )

    def _dbfs_read(self, p: Mapping[str, Any]) -> Mapping[str, Any]:
        local = self._dbfs_path(p.get("path"))
        offset = _as_int(p.get("offset", 0), "offset")
        length = _as_int(p.get("length", _DEFAULT_READ), "length")
        if offset < 0 or length < 0:
            raise _invalid("The offset and the length must not be negative.")
        if length > _MAX_BLOCK:
            raise DatabricksApiError(400, "MAX_READ_SIZE_EXCEEDED", "Cannot read more than 1.0 MiB per request.")
        if not local.exists():
            raise self._missing(p.get("path"))
        if local.is_dir():
            raise _invalid(f"The path {p.get('path')} is a directory.")
        with local.open("rb") as fh:
            fh.seek(offset)
            data = fh.read(length)
        return {"bytes_read": len(data), "data": base64.b64encode(data).decode("ascii")}

    def _dbfs_get_status(self, p: Mapping[str, Any]) -> Mapping[str, Any]:
        local = self._dbfs_path(p.get("path"))
        if not local.exists():
            raise self._missing(p.get("path"))
        return self._file_info(local)

    def _dbfs_list(self, p: Mapping[str, Any]) -> Mapping[str, Any]:
        local = self._dbfs_path(p.get("path"))
        if not local.exists():
            raise self._missing(p.get("path"))
        if not local.is_dir():
            return {"files": [self._file_info(local)]}
        return {"files": [self._file_info(child) for child in sorted(local.iterdir())]}

    def _dbfs_mkdirs(self, p: Mapping[str, Any]) -> Mapping[str, Any]:
        local = self._dbfs_path(p.get("path"))
        with self._lock:
            self._check_parent_dirs(local / "x")
            local.mkdir(parents=True, exist_ok=True)
        return {}

    def _dbfs_move(self, p: Mapping[str, Any]) -> Mapping[str, Any]:
        source = self._dbfs_path(p.get("source_path"))
        target = self._dbfs_path(p.get("destination_path"))
        with self._lock:
            if not source.exists():
                raise self._missing(p.get("source_path"))
            if target.exists():
                raise DatabricksApiError(
                    400, "RESOURCE_ALREADY_EXISTS", f"A file or directory already exists at {p['destination_path']}."
                )
            target.parent.mkdir(parents=True, exist_ok=True)
            source.rename(target)
        return {}

    def _dbfs_delete(self, p: Mapping[str, Any]) -> Mapping[str, Any]:
        local = self._dbfs_path(p.get("path"))
        with self._lock:
            if not local.exists():
                return {}
            if local.is_dir():
                if local == self.dbfs_root:
                    raise _invalid("Cannot delete the DBFS root.")
                if any(local.iterdir()) and not _truthy(p.get("recursive")):
                    raise DatabricksApiError(
                        400, "IO_ERROR", f"Cannot delete {p['path']}: the directory is not empty (pass recursive)."
                    )
                shutil.rmtree(local)
            else:
                local.unlink()
        return {}

    # ------------------------------------------------------------------ clusters / permissions

    def _clusters_get(self, p: Mapping[str, Any]) -> Mapping[str, Any]:
        cluster_id = p.get("cluster_id")
        if not cluster_id:
            raise _invalid("Missing required field: cluster_id")
        with self._lock:
            spec = self.clusters.get(cluster_id)
            if spec is None:
                raise _invalid(f"Cluster {cluster_id} does not exist")
            return {k: v for k, v in spec.items() if k != "job_cluster"}

    def _permissions(self, method: str, kind: str, object_id: str, body: Mapping[str, Any]) -> Mapping[str, Any]:
        with self._lock:
            if kind == "jobs" and not any(str(r.job_id) == object_id for r in self.runs.values()):
                raise DatabricksApiError(404, "RESOURCE_DOES_NOT_EXIST", f"Job {object_id} does not exist.")
            if kind == "clusters" and object_id not in self.clusters:
                raise DatabricksApiError(404, "RESOURCE_DOES_NOT_EXIST", f"Cluster {object_id} does not exist.")
            acl = self.permissions.setdefault((kind, object_id), [])
            if method in ("PATCH", "PUT"):
                entries = body.get("access_control_list")
                if not isinstance(entries, list):
                    raise _invalid("Missing required field: access_control_list")
                for entry in entries:
                    if not isinstance(entry, dict) or "permission_level" not in entry:
                        raise _invalid("Each access control entry needs a permission_level")
                    principals = [k for k in ("user_name", "group_name", "service_principal_name") if entry.get(k)]
                    if len(principals) != 1:
                        raise _invalid("Each access control entry names exactly one principal")
                if method == "PUT":
                    acl.clear()
                acl.extend(entries)
            return {
                "object_id": f"/{kind}/{object_id}",
                "object_type": kind[:-1],
                "access_control_list": [
                    {
                        **{k: v for k, v in e.items() if k != "permission_level"},
                        "all_permissions": [{"permission_level": e["permission_level"], "inherited": False}],
                    }
                    for e in acl
                ],
            }

    # ------------------------------------------------------------------ jobs

    def _validate_submit(
        self, p: Mapping[str, Any]
    ) -> tuple[dict[str, Any], Optional[str], Optional[dict[str, Any]], Optional[dict[str, Any]]]:
        """(task, existing cluster id, new cluster, serverless environment), validated."""
        if "git_source" in p:
            raise _invalid("The emulator does not support git_source")
        tasks = p.get("tasks")
        if tasks is None:
            if any(kind in p for kind in _TASK_KINDS):
                raise _invalid("Jobs API 2.1+ expects the task inside `tasks`; top-level task fields are not accepted")
            raise _invalid("At least one task is required.")
        if not isinstance(tasks, list) or not tasks:
            raise _invalid("At least one task is required.")
        if len(tasks) != 1:
            raise _invalid(f"The emulator runs single-task submissions only; got {len(tasks)} tasks")
        task = tasks[0]
        if not isinstance(task, dict):
            raise _invalid("A task must be an object")
        if not isinstance(task.get("task_key"), str) or not task["task_key"]:
            raise _invalid("Missing required field: task_key")
        if not re.fullmatch(r"[\w\-.]{1,100}", task["task_key"]):
            raise _invalid(f"Invalid task_key {task['task_key']!r}: use letters, digits, '_', '-' and '.' (at most 100)")
        kinds = [kind for kind in _TASK_KINDS if task.get(kind) is not None]
        if len(kinds) != 1:
            raise _invalid(f"Task {task['task_key']} must specify exactly one task type, got {kinds or 'none'}")
        if kinds != ["spark_python_task"]:
            raise _invalid(f"The emulator runs spark_python_task only, got {kinds[0]}")
        spt = task["spark_python_task"]
        if not isinstance(spt, dict) or not isinstance(spt.get("python_file"), str) or not spt["python_file"]:
            raise _invalid("Missing required field: spark_python_task.python_file")
        if spt.get("source", "WORKSPACE") not in ("WORKSPACE", "GIT"):
            raise _invalid(f"Invalid source {spt['source']!r}")
        if spt.get("source") == "GIT":
            raise _invalid("Task source GIT requires a git_source on the run")
        if not spt["python_file"].startswith(("dbfs:/", "/Volumes/")):
            raise _invalid(f"The emulator runs python files on DBFS (dbfs:/...) or a volume (/Volumes/...) only, got {spt['python_file']}")
        params = spt.get("parameters", [])
        if not isinstance(params, list) or not all(isinstance(x, str) for x in params):
            raise _invalid("spark_python_task.parameters must be an array of strings")

        compute = [k for k in ("existing_cluster_id", "new_cluster", "job_cluster_key", "environment_key") if task.get(k)]
        if len(compute) > 1:
            raise _invalid(f"Task {task['task_key']} may specify only one of {', '.join(compute)}")
        if not compute:
            raise _invalid(f"Task {task['task_key']}: a Python task on serverless compute needs an environment_key")
        if compute[0] == "job_cluster_key":
            raise _invalid("The emulator does not support job_cluster_key on runs/submit")
        existing = task.get("existing_cluster_id")
        new_cluster = task.get("new_cluster")
        environment = self._serverless_environment(p, task) if compute[0] == "environment_key" else None
        if existing is not None:
            if not isinstance(existing, str) or existing not in self.clusters or self.clusters[existing].get("job_cluster"):
                raise _invalid(f"Cluster {existing} does not exist")
        elif environment is None:
            self._validate_new_cluster(new_cluster)

        libraries = task.get("libraries", [])
        if not isinstance(libraries, list):
            raise _invalid("libraries must be an array")
        for lib in libraries:
            _validate_library(lib)
        timeout = p.get("timeout_seconds", 0)
        if not isinstance(timeout, int) or timeout < 0:
            raise _invalid("timeout_seconds must be a non-negative integer")
        token = p.get("idempotency_token")
        if token is not None and (not isinstance(token, str) or len(token) > 64):
            raise _invalid("idempotency_token must be a string of at most 64 characters")
        return task, existing, new_cluster, environment

    def _serverless_environment(self, p: Mapping[str, Any], task: Mapping[str, Any]) -> dict[str, Any]:
        """The `environments` entry of a serverless task, validated."""
        if self.serverless_remote is None:
            raise _invalid("Serverless compute is not enabled for this workspace")
        if task.get("libraries"):
            raise _invalid("Libraries field is not supported for serverless task, please specify libraries in environment")
        key = task["environment_key"]
        found = [e for e in p.get("environments") or [] if isinstance(e, dict) and e.get("environment_key") == key]
        if len(found) != 1:
            raise _invalid(f"Task {task['task_key']}: environment_key {key!r} must match exactly one of the run's environments")
        spec = found[0].get("spec")
        if not isinstance(spec, dict) or not (spec.get("environment_version") or spec.get("client")):
            raise _invalid(f"Environment {key!r}: spec.environment_version (or the older spec.client) is required")
        dependencies = spec.get("dependencies", [])
        if not isinstance(dependencies, list) or not all(isinstance(d, str) and d for d in dependencies):
            raise _invalid(f"Environment {key!r}: dependencies must be an array of strings")
        return dict(found[0])

    @staticmethod
    def _validate_new_cluster(cluster: Any) -> None:
        if not isinstance(cluster, dict):
            raise _invalid("new_cluster must be an object")
        version = cluster.get("spark_version")
        if not version:
            raise _invalid("Missing required field: new_cluster.spark_version")
        if not isinstance(version, str) or not _SPARK_VERSION_RE.match(version):
            raise _invalid(f"Invalid spark version {version}.")
        if not cluster.get("node_type_id") and not cluster.get("instance_pool_id"):
            raise _invalid("new_cluster needs node_type_id or instance_pool_id")
        if cluster.get("node_type_id") and cluster.get("instance_pool_id"):
            raise _invalid("new_cluster may not set node_type_id together with instance_pool_id")
        if cluster.get("driver_instance_pool_id") and not cluster.get("instance_pool_id"):
            raise _invalid("driver_instance_pool_id requires instance_pool_id")
        has_workers, autoscale = "num_workers" in cluster, cluster.get("autoscale")
        if has_workers == bool(autoscale):
            raise _invalid("new_cluster needs exactly one of num_workers and autoscale")
        if has_workers and (not isinstance(cluster["num_workers"], int) or cluster["num_workers"] < 0):
            raise _invalid("num_workers must be a non-negative integer")
        if autoscale:
            lo, hi = autoscale.get("min_workers"), autoscale.get("max_workers")
            if not isinstance(lo, int) or not isinstance(hi, int) or lo < 0 or hi < 1 or lo > hi:
                raise _invalid("autoscale needs 0 <= min_workers <= max_workers and max_workers >= 1")
        for key in ("spark_conf", "spark_env_vars"):
            value = cluster.get(key, {})
            if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
                raise _invalid(f"new_cluster.{key} must map strings to strings")

    def _runs_submit(self, p: Mapping[str, Any]) -> Mapping[str, Any]:
        task, existing, new_cluster, environment = self._validate_submit(p)
        with self._lock:
            token = p.get("idempotency_token")
            if token and token in self._idempotency:
                return {"run_id": self._idempotency[token]}
            run_id, task_run_id, job_id = next(self._ids), next(self._ids), next(self._job_ids)
            if environment is not None:
                cluster_id = ""  # serverless: no cluster of the workspace's
            elif existing is not None:
                cluster_id = existing
            else:
                cluster_id = "{}-{}".format(
                    time.strftime("%m%d-%H%M%S"), "".join(random.choices(string.ascii_lowercase, k=8))
                )
                self.clusters[cluster_id] = {
                    **new_cluster,
                    "cluster_id": cluster_id,
                    "cluster_name": f"job-{job_id}-run-{run_id}",
                    "cluster_source": "JOB",
                    "state": "PENDING",
                    "job_cluster": True,
                }
            run = EmulatedRun(
                run_id=run_id,
                task_run_id=task_run_id,
                job_id=job_id,
                run_name=p.get("run_name") or "Untitled",
                submit_body=p,
                task=task,
                cluster_id=cluster_id,
                new_cluster=new_cluster,
                environment=environment,
                run_dir=self.runs_root / str(run_id),
                timeout_seconds=max(int(p.get("timeout_seconds") or 0), int(task.get("timeout_seconds") or 0)),
                start_time=_now_ms(),
            )
            run.state_history.append(("PENDING", None, time.monotonic()))
            self.runs[run_id] = run
            self._task_runs[task_run_id] = run
            if token:
                self._idempotency[token] = run_id
        threading.Thread(target=self._execute, args=(run,), name=f"run-{run_id}", daemon=True).start()
        return {"run_id": run_id}

    def _lookup_run(self, p: Mapping[str, Any], allow_task: bool = True) -> tuple[EmulatedRun, bool]:
        run_id = _as_int(p.get("run_id"), "run_id")
        with self._lock:
            if run_id in self.runs:
                return self.runs[run_id], False
            if allow_task and run_id in self._task_runs:
                return self._task_runs[run_id], True
        raise _invalid(f"Run {run_id} does not exist.")

    def _state_json(self, run: EmulatedRun) -> dict[str, Any]:
        state: dict[str, Any] = {
            "life_cycle_state": run.life_cycle_state,
            "state_message": run.state_message,
            "user_cancelled_or_timedout": run.user_cancelled_or_timedout,
        }
        if run.result_state:
            state["result_state"] = run.result_state
        return state

    def _status_json(self, run: EmulatedRun) -> dict[str, Any]:
        v2 = "TERMINATED" if run.life_cycle_state in _TERMINAL else run.life_cycle_state
        status: dict[str, Any] = {"state": v2}
        if run.termination_code:
            status["termination_details"] = {
                "code": run.termination_code,
                "type": run.termination_type,
                "message": run.state_message,
            }
        return status

    def _durations(self, run: EmulatedRun) -> dict[str, Any]:
        now = _now_ms()
        running = run.running_time
        end = run.end_time
        out: dict[str, Any] = {"start_time": run.start_time}
        out["setup_duration"] = (running or end or now) - run.start_time
        out["execution_duration"] = ((end or now) - running) if running else 0
        out["cleanup_duration"] = 0
        if end:
            out["end_time"] = end
            out["run_duration"] = end - run.start_time
        return out

    def run_page_url(self, run: EmulatedRun, task_run_id: Optional[int] = None) -> str:
        return f"{self.host}/?o=0#job/{run.job_id}/run/{task_run_id or run.run_id}"

    def _task_json(self, run: EmulatedRun) -> dict[str, Any]:
        task = {k: v for k, v in run.task.items()}
        task.update(
            {
                "run_id": run.task_run_id,
                "task_key": run.task["task_key"],
                "state": self._state_json(run),
                "status": self._status_json(run),
                "attempt_number": 0,
                "run_page_url": self.run_page_url(run, run.task_run_id),
                **self._cluster_instance(run),
                **self._durations(run),
            }
        )
        return task

    @staticmethod
    def _cluster_instance(run: EmulatedRun) -> dict[str, Any]:
        if not run.cluster_id:  # serverless
            return {}
        return {"cluster_instance": {"cluster_id": run.cluster_id, "spark_context_id": str(run.run_id * 7919)}}

    def _run_json(self, run: EmulatedRun) -> dict[str, Any]:
        return {
            "job_id": run.job_id,
            "run_id": run.run_id,
            "number_in_job": run.run_id,
            "original_attempt_run_id": run.run_id,
            "creator_user_name": "emulator@databricks.test",
            "run_name": run.run_name,
            "run_type": "SUBMIT_RUN",
            "format": "MULTI_TASK",
            "attempt_number": 0,
            "state": self._state_json(run),
            "status": self._status_json(run),
            "tasks": [self._task_json(run)],
            **self._cluster_instance(run),
            "run_page_url": self.run_page_url(run),
            **self._durations(run),
        }

    def _runs_get(self, p: Mapping[str, Any]) -> Mapping[str, Any]:
        run, is_task = self._lookup_run(p)
        with self._lock:
            if is_task:
                return {**self._task_json(run), "job_id": run.job_id, "run_name": run.run_name}
            return self._run_json(run)

    def _runs_get_output(self, p: Mapping[str, Any]) -> Mapping[str, Any]:
        run, is_task = self._lookup_run(p)
        if not is_task:
            raise _invalid(
                "Retrieving the output of runs with multiple tasks is not supported. "
                "Please retrieve the output of each individual task run instead."
            )
        with self._lock:
            out: dict[str, Any] = {"metadata": {**self._task_json(run), "job_id": run.job_id}}
            if run.terminated:
                logs = run.stdout()
                out["logs"] = logs[-5 * 1024 * 1024 :]
                out["logs_truncated"] = len(logs) > 5 * 1024 * 1024
            if run.error:
                out["error"] = run.error
                out["error_trace"] = run.error_trace or ""
            return out

    def _runs_cancel(self, p: Mapping[str, Any]) -> Mapping[str, Any]:
        run, _ = self._lookup_run(p)
        self._cancel(run)
        return {}

    def _cancel(self, run: EmulatedRun) -> None:
        with self._lock:
            if run.terminated or run.cancel_requested:
                return
            run.cancel_requested = True
            run.user_cancelled_or_timedout = True
            self._set_state(run, "TERMINATING")
            proc = self._processes.get(run.run_id)
        if proc is not None:
            _kill_group(proc)

    # ------------------------------------------------------------------ run execution

    def _set_state(self, run: EmulatedRun, state: str, result: Optional[str] = None, message: Optional[str] = None) -> None:
        with self._lock:
            run.life_cycle_state = state
            if result is not None:
                run.result_state = result
            if message is not None:
                run.state_message = message
            if state == "RUNNING" and run.running_time is None:
                run.running_time = _now_ms()
            run.state_history.append((state, result, time.monotonic()))

    def _finish(
        self, run: EmulatedRun, state: str, result: str, message: str, code: str, kind: str
    ) -> None:
        with self._lock:
            run.termination_code, run.termination_type = code, kind
            run.end_time = _now_ms()
            self._set_state(run, state, result, message)
            cluster = self.clusters.get(run.cluster_id)
            if cluster and cluster.get("job_cluster"):
                cluster["state"] = "TERMINATED"
            self._processes.pop(run.run_id, None)
        run.done.set()

    def _execute(self, run: EmulatedRun) -> None:
        try:
            self._execute_inner(run)
        except Exception as e:  # never leave a run hanging on an emulator bug
            if not run.terminated:
                message = f"Emulator error: {type(e).__name__}: {e}"
                self._finish(run, "INTERNAL_ERROR", "FAILED", message, "INTERNAL_ERROR", "INTERNAL_ERROR")

    def _library_failure(self, run: EmulatedRun, lib: Mapping[str, Any], reason: str) -> None:
        self._finish(
            run,
            "INTERNAL_ERROR",
            "FAILED",
            f"Library installation failed for library due to user error for {_describe_library(lib)}. "
            f"Error messages: {reason}",
            "LIBRARY_INSTALLATION_ERROR",
            "CLIENT_ERROR",
        )

    def _execute_inner(self, run: EmulatedRun) -> None:
        run.run_dir.mkdir(parents=True, exist_ok=True)
        driver_dir, tmp_dir = run.run_dir / "driver", run.run_dir / "tmp"
        driver_dir.mkdir(exist_ok=True)
        tmp_dir.mkdir(exist_ok=True)
        serverless = run.environment is not None
        cluster = {} if serverless else self.clusters[run.cluster_id]
        with self._lock:
            if cluster.get("job_cluster"):
                cluster["state"] = "RUNNING"
        spt = run.task["spark_python_task"]

        # Library files (on DBFS or a volume) must exist before anything runs. A serverless
        # environment's dependencies are pip specs or paths of wheels on a volume.
        requested = (
            [{"whl": d} if d.startswith("/Volumes/") else {"pypi": {"package": d}} for d in run.environment["spec"].get("dependencies", [])]
            if serverless
            else run.task.get("libraries", [])
        )
        libraries: list[dict[str, Any]] = []
        for lib in requested:
            kind = next(k for k in _LIBRARY_KINDS if k in lib)
            if kind in ("whl", "jar", "egg", "requirements"):
                location = lib[kind]
                if not location.startswith(("dbfs:/", "/Volumes/")):
                    return self._library_failure(run, lib, f"the emulator installs {kind} files from dbfs:/ or /Volumes/ only")
                local = self._file_local_path(location)
                if not local.is_file():
                    return self._library_failure(run, lib, f"java.io.FileNotFoundException: {location} (No such file or directory)")
                libraries.append({kind: str(local), "location": location})
            else:
                libraries.append(dict(lib))

        python_file = self._file_local_path(spt["python_file"])
        if not python_file.is_file():
            return self._finish(
                run, "TERMINATED", "FAILED",
                f"Cannot read the python file {spt['python_file']}: no such file.",
                "RESOURCE_NOT_FOUND", "CLIENT_ERROR",
            )
        parameters = [
            str(self.dbfs_local_path(x)) if x.startswith("/dbfs/") and not serverless else x for x in spt.get("parameters", [])
        ]

        spark_conf = {} if serverless else {**_cluster_usage_tags(run.cluster_id, cluster), **cluster.get("spark_conf", {})}
        jars = [lib["jar"] for lib in libraries if "jar" in lib]
        if jars:
            spark_conf["spark.jars"] = ",".join(jars)
        version_match = _SPARK_VERSION_RE.match(cluster.get("spark_version", DBR_SPARK_VERSION))
        runtime_version = f"{version_match.group(1)}.{version_match.group(2)}" if version_match else "17.3"
        if serverless:
            runtime_version = f"client.{run.environment['spec'].get('environment_version') or run.environment['spec'].get('client')}"
        api_token = "dapi" + "".join(random.choices("0123456789abcdef", k=32))
        with self._lock:
            self._run_tokens.add(api_token)
        spec = {
            "python_file": str(python_file),
            "parameters": parameters,
            "libraries": libraries,
            "runtime_libraries": sorted(self.runtime_libraries | (SERVERLESS_EXTRA_DISTRIBUTIONS if serverless else set())),
            "enforce": self.enforce_cluster_libraries,
            "cluster_roots": [str(self.root_dir)],
            "dbfs_root": None if serverless else str(self.dbfs_root),
            "volumes_root": str(self.volumes_root),
            "serverless": serverless,
            "secrets_file": str(run.run_dir / "secrets.json"),
            # Serverless compute is Spark Connect: the driver gets a client session, never a JVM.
            "spark_factory": f"{Path(__file__).resolve()}:connect_session" if serverless else self.spark_session_factory,
            "spark_kwargs": {"remote": self.serverless_remote} if serverless else self.spark_session_kwargs,
            "spark_conf": spark_conf,
            "workspace_url": f"127.0.0.1:{self.port}",
            "api_token": api_token,
            "run_dir": str(run.run_dir),
        }
        (run.run_dir / "spec.json").write_text(json.dumps(spec, indent=2))
        secrets_file = run.run_dir / "secrets.json"
        fd = os.open(secrets_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump([[scope, key, value] for (scope, key), value in self.secrets.items()], fh)

        env = {name: os.environ[name] for name in self.passthrough_env if name in os.environ}
        env.update(
            {
                "DATABRICKS_RUNTIME_VERSION": runtime_version,
                **({} if serverless else {"DB_CLUSTER_ID": run.cluster_id}),
                "DB_IS_DRIVER": "TRUE",
                "TMPDIR": str(tmp_dir),
                "PYSPARK_PYTHON": self.runtime_python,
                "MLFLOW_TRACKING_URI": "databricks",
            }
        )
        env.update(self.cluster_env)
        env.update(cluster.get("spark_env_vars", {}))

        bootstrap = (
            "import importlib.util, sys\n"
            "spec = importlib.util.spec_from_file_location('_databricks_emulator_runtime', sys.argv[1])\n"
            "module = importlib.util.module_from_spec(spec)\n"
            "sys.modules[spec.name] = module\n"
            "spec.loader.exec_module(module)\n"
            "sys.exit(module._runtime_main(sys.argv[2]))\n"
        )
        cmd = [self.runtime_python, "-I", "-B", "-c", bootstrap, str(Path(__file__).resolve()), str(run.run_dir / "spec.json")]
        with self._lock:
            if run.cancel_requested:
                return self._finish(run, "TERMINATED", "CANCELED", "Run cancelled.", "CANCELED", "SUCCESS")
            with run.stdout_path.open("wb") as out, run.stderr_path.open("wb") as err:
                proc = subprocess.Popen(
                    cmd, cwd=driver_dir, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=err, start_new_session=True
                )
            self._processes[run.run_id] = proc
            run.pid = proc.pid

        marker = run.run_dir / "installed-libraries.json"
        deadline = time.monotonic() + run.timeout_seconds if run.timeout_seconds else None
        timed_out = False
        while True:
            try:
                run.returncode = proc.wait(timeout=0.05)
                break
            except subprocess.TimeoutExpired:
                pass
            if run.life_cycle_state == "PENDING" and marker.exists():
                self._set_state(run, "RUNNING")
            if deadline is not None and time.monotonic() > deadline and not timed_out:
                timed_out = True
                run.user_cancelled_or_timedout = True
                _kill_group(proc)
        _kill_group(proc)  # the driver's children (a JVM) do not outlive it

        if run.life_cycle_state == "PENDING" and marker.exists():
            self._set_state(run, "RUNNING")
        if run.cancel_requested:
            return self._finish(run, "TERMINATED", "CANCELED", "Run cancelled.", "CANCELED", "SUCCESS")
        if timed_out:
            return self._finish(
                run, "TERMINATED", "TIMEDOUT", f"Run timed out after {run.timeout_seconds} seconds.",
                "RUN_EXECUTION_ERROR", "CLIENT_ERROR",
            )
        install_error = run.run_dir / "library-error.json"
        if run.returncode == _EXIT_LIBRARY_ERROR and install_error.exists():
            failure = json.loads(install_error.read_text())
            return self._library_failure(run, failure["library"], failure["message"])
        if run.returncode == 0:
            return self._finish(run, "TERMINATED", "SUCCESS", "", "SUCCESS", "SUCCESS")
        error_file = run.run_dir / "error.json"
        if error_file.exists():
            error = json.loads(error_file.read_text())
            run.error, run.error_trace = error["error"], error["error_trace"]
            message = error["summary"]
        else:
            tail = run.stderr().strip().splitlines()[-5:]
            run.error = f"Python process exited with code {run.returncode}"
            message = run.error + (": " + " | ".join(tail) if tail else "")
        return self._finish(run, "TERMINATED", "FAILED", message, "RUN_EXECUTION_ERROR", "CLIENT_ERROR")


def _cluster_usage_tags(cluster_id: str, cluster: Mapping[str, Any]) -> dict[str, str]:
    """The `spark.databricks.clusterUsageTags.*` confs Databricks sets on a cluster's session
    (dagster-pipes' `PipesDbfsMessageWriter` reads them to locate the driver logs)."""
    log_conf = cluster.get("cluster_log_conf") or {}
    destination = (log_conf.get("dbfs") or {}).get("destination", "")
    return {
        "spark.databricks.clusterUsageTags.clusterId": cluster_id,
        "spark.databricks.clusterUsageTags.clusterName": str(cluster.get("cluster_name", cluster_id)),
        "spark.databricks.clusterUsageTags.clusterLogDeliveryEnabled": "true" if destination else "false",
        "spark.databricks.clusterUsageTags.clusterLogDestination": destination,
    }


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "DatabricksEmulator/1.0"

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        emulator: DatabricksEmulator = self.server.emulator  # type: ignore[attr-defined]
        status, payload = emulator._handle(self.command, self.path, self.headers, raw)
        binary = isinstance(payload, bytes)
        data = payload if binary else json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/octet-stream" if binary else "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = do_HEAD = _serve

    def log_message(self, format: str, *args: Any) -> None:  # keep test output readable
        pass


def _now_ms() -> int:
    return int(time.time() * 1000)


def _truthy(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.lower() == "true")


def _as_int(value: Any, name: str) -> int:
    if value is None or value == "":
        raise _invalid(f"Missing required field: {name}")
    if isinstance(value, bool):
        raise _invalid(f"Invalid value for {name}: {value!r}")
    try:
        return int(value)
    except (TypeError, ValueError):
        raise _invalid(f"Invalid value for {name}: {value!r}")


def _validate_library(lib: Any) -> None:
    if not isinstance(lib, dict):
        raise _invalid("Each library must be an object")
    kinds = [k for k in _LIBRARY_KINDS if lib.get(k) is not None]
    unknown = sorted(set(lib) - set(_LIBRARY_KINDS))
    if len(kinds) != 1 or unknown:
        raise _invalid(
            f"A library must specify exactly one of {', '.join(_LIBRARY_KINDS)}; got {sorted(lib) or 'an empty library'}"
        )
    kind = kinds[0]
    value = lib[kind]
    if kind in ("pypi", "cran"):
        if not isinstance(value, dict) or not isinstance(value.get("package"), str) or not value["package"].strip():
            raise _invalid(f"Missing required field: {kind}.package")
    elif kind == "maven":
        if not isinstance(value, dict) or not isinstance(value.get("coordinates"), str) or value["coordinates"].count(":") != 2:
            raise _invalid("maven.coordinates must look like group:artifact:version")
    else:
        if not isinstance(value, str) or not value.strip():
            raise _invalid(f"Missing required field: {kind}")
        if kind == "whl" and not (value.endswith(".whl") or value.endswith(".wheelhouse.zip")):
            raise _invalid(f"A whl library must be a .whl (or .wheelhouse.zip) file, got {value}")
        if kind == "jar" and not value.endswith(".jar"):
            raise _invalid(f"A jar library must be a .jar file, got {value}")


def _describe_library(lib: Mapping[str, Any]) -> str:
    if "pypi" in lib:
        return f'pypi {{ package: "{lib["pypi"]["package"]}" }}'
    kind = next((k for k in _LIBRARY_KINDS if k in lib), "library")
    value = lib.get("location") or lib.get(kind)
    return f'{kind}: "{value}"'


def _kill_group(proc: subprocess.Popen) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            return
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            continue
        if sig == signal.SIGTERM:
            # the leader is gone; take its children (a JVM) with it
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            return


# ====================================================================== the emulated driver
#
# Everything below runs inside the run's subprocess (`runtime_python -I -B`), where
# this file is loaded as `_databricks_emulator_runtime` before the guard is installed.


class _LibraryInstallError(Exception):
    def __init__(self, library: Mapping[str, Any], message: str):
        super().__init__(message)
        self.library = library
        self.message = message


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _install_libraries(runtime_libraries: Iterable[str], libraries: Sequence[Mapping[str, Any]]) -> set[str]:
    """The emulated `pip install`: the distributions the cluster has, closed under requirements."""
    import importlib.metadata as md
    import zipfile

    try:
        from packaging.requirements import InvalidRequirement, Requirement
    except ImportError:  # pragma: no cover - pip vendors the same package
        from pip._vendor.packaging.requirements import InvalidRequirement, Requirement  # type: ignore

    installed: dict[str, md.Distribution] = {}
    for dist in md.distributions():
        name = dist.metadata["Name"]
        if name:
            installed.setdefault(_canonical(name), dist)

    queue: list[tuple[str, frozenset[str], Sequence[str]]] = []

    def enqueue(name: str, extras: Iterable[str], requires: Optional[Sequence[str]] = None) -> None:
        canonical = _canonical(name)
        if requires is None:
            dist = installed.get(canonical)
            if dist is None:
                return
            requires = dist.requires or []
        queue.append((canonical, frozenset(_canonical(e) for e in extras), requires))

    for name in runtime_libraries:
        enqueue(name, ())

    expanded: list[Mapping[str, Any]] = []
    for lib in libraries:
        if "requirements" in lib:  # a requirements.txt: one pypi library per line
            with open(lib["requirements"]) as fh:
                for line in fh:
                    line = line.split("#", 1)[0].strip()
                    if line and not line.startswith("-"):
                        expanded.append({"pypi": {"package": line}})
        else:
            expanded.append(lib)

    for lib in expanded:
        if "pypi" in lib:
            package = lib["pypi"]["package"]
            try:
                req = Requirement(package)
            except InvalidRequirement as e:
                raise _LibraryInstallError(lib, f"ERROR: Invalid requirement: {package!r}: {e}")
            if req.url:
                raise _LibraryInstallError(lib, f"the emulator cannot install direct references ({package})")
            dist = installed.get(_canonical(req.name))
            if dist is None:
                raise _LibraryInstallError(
                    lib,
                    f"ERROR: Could not find a version that satisfies the requirement {package} "
                    f"(emulator: {req.name} is not installed in the test environment, so it was never tested)",
                )
            if req.specifier and not req.specifier.contains(dist.version, prereleases=True):
                raise _LibraryInstallError(
                    lib,
                    f"the tested environment has {dist.metadata['Name']}=={dist.version}, but {package} makes pip "
                    f"install another version on the cluster than the one the tests ran",
                )
            enqueue(req.name, req.extras)
        elif "whl" in lib:
            path = lib["whl"]
            if path.endswith(".wheelhouse.zip"):
                raise _LibraryInstallError(lib, "the emulator does not install wheelhouse archives")
            try:
                with zipfile.ZipFile(path) as zf:
                    meta_name = next(n for n in zf.namelist() if n.count("/") == 1 and n.endswith(".dist-info/METADATA"))
                    metadata = zf.read(meta_name).decode()
            except (zipfile.BadZipFile, StopIteration, OSError) as e:
                raise _LibraryInstallError(lib, f"ERROR: {lib.get('location', path)} is not a valid wheel: {e}")
            import email

            message = email.message_from_string(metadata)
            enqueue(message["Name"], (), message.get_all("Requires-Dist") or [])
        elif "egg" in lib:
            raise _LibraryInstallError(lib, "Python egg libraries are not supported on Databricks Runtime 14.0 and above")
        elif "cran" in lib:
            raise _LibraryInstallError(lib, "the emulated cluster has no R")
        # jar / maven: JVM libraries (jars reach the SparkSession through spark.jars)

    allowed: set[str] = set()
    seen: set[tuple[str, frozenset[str]]] = set()
    while queue:
        name, extras, requires = queue.pop()
        if (name, extras) in seen:
            continue
        seen.add((name, extras))
        allowed.add(name)
        for text in requires:
            try:
                req = Requirement(text)
            except InvalidRequirement:
                continue
            if req.marker is not None:
                wanted = [""] + sorted(extras)
                if not any(req.marker.evaluate({"extra": extra}) for extra in wanted):
                    continue
            enqueue(req.name, req.extras)
    return allowed


def _under(path: str, roots: Sequence[str]) -> bool:
    path = os.path.realpath(path)
    for root in roots:
        try:
            if os.path.commonpath([path, root]) == root:
                return True
        except ValueError:
            continue
    return False


class _ClusterImportGuard:
    """The meta-path finder that makes the driver see only what the cluster has.

    It takes over from every finder but the builtin/frozen ones, and for a
    top-level import: resolves it on the cluster's paths only (the Python
    installation, the emulator's directories: not the repository), and refuses
    distributions the cluster did not install.
    """

    def __init__(self, allowed: set[str], cluster_roots: Sequence[str]):
        import site
        import sysconfig

        self.allowed = allowed
        paths = sysconfig.get_paths()
        self.site_dirs = sorted(
            {os.path.realpath(p) for p in (paths["purelib"], paths["platlib"], *site.getsitepackages()) if p}
        )
        self.cluster_roots = sorted(
            {os.path.realpath(p) for p in (paths["stdlib"], paths["platstdlib"], *self.site_dirs, *cluster_roots)}
        )
        self.delegates: list[Any] = []
        self._owners: Optional[dict[str, set[str]]] = None
        self._namespace_owners: dict[str, dict[str, set[str]]] = {}
        self._local = threading.local()
        self.post_import_hooks: dict[str, Callable[[Any], None]] = {}

    def install(self) -> None:
        from importlib.machinery import BuiltinImporter, FrozenImporter

        keep = [f for f in sys.meta_path if f in (BuiltinImporter, FrozenImporter)]
        self.delegates = [f for f in sys.meta_path if f not in keep]
        sys.meta_path[:] = [*keep, self]

    # -- bypass for the runtime's own code (the SparkSession factory)
    @property
    def bypassed(self) -> bool:
        return getattr(self._local, "depth", 0) > 0

    def bypass(self) -> "_Bypass":
        return _Bypass(self._local)

    # -- ownership
    def owners(self, top: str) -> set[str]:
        if self._owners is None:
            import importlib.metadata as md

            with self.bypass():
                mapping = md.packages_distributions()
            self._owners = {name: {_canonical(d) for d in dists} for name, dists in mapping.items()}
        return self._owners.get(top, set())

    def namespace_owners(self, fullname: str) -> set[str]:
        top = fullname.partition(".")[0]
        table = self._namespace_owners.get(top)
        if table is None:
            import importlib.metadata as md

            table = {}
            for dist_name in self.owners(top):
                try:
                    with self.bypass():
                        files = md.distribution(dist_name).files or []
                except md.PackageNotFoundError:
                    continue
                for file in files:
                    parts = file.parts
                    if len(parts) < 2 or parts[0] != top:
                        continue
                    second = parts[1][: -len(".py")] if parts[1].endswith(".py") else parts[1]
                    if "." in second or second == "__pycache__":
                        continue
                    table.setdefault(f"{top}.{second}", set()).add(dist_name)
            self._namespace_owners[top] = table
        return table.get(".".join(fullname.split(".")[:2]), set())

    # -- the finder protocol
    def _delegate(self, fullname: str, path: Any, target: Any, restrict: bool) -> Any:
        from importlib.machinery import PathFinder

        for finder in self.delegates:
            find_spec = getattr(finder, "find_spec", None)
            if find_spec is None:
                continue
            if finder is PathFinder and restrict:
                search = [p for p in sys.path if isinstance(p, str) and p and _under(p, self.cluster_roots)]
                spec = PathFinder.find_spec(fullname, search, target)
            else:
                spec = find_spec(fullname, path, target)
            if spec is not None:
                return spec
        return None

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        if self.bypassed:
            return self._hooked(fullname, self._delegate(fullname, path, target, restrict=False))
        if path is not None:
            spec = self._delegate(fullname, path, target, restrict=False)
            origin = getattr(spec, "origin", None)
            if (
                origin not in (None, "namespace", "built-in", "frozen")
                and fullname.partition(".")[0] not in sys.stdlib_module_names
                and not _under(origin, self.site_dirs)
                and not _under(origin, self.cluster_roots)
            ):
                # A submodule that an editable install's finder maps into a directory of this
                # machine (the repository), whatever its parent's path: the cluster lacks it too.
                return None
            if spec is not None and fullname.count(".") == 1:
                parent = sys.modules.get(fullname.partition(".")[0])
                if parent is not None and getattr(parent, "__file__", None) is None:  # a namespace package
                    owners = self.namespace_owners(fullname)
                    if owners and not owners & self.allowed:
                        return self._refuse(fullname, owners)
            return self._hooked(fullname, spec)
        if fullname in sys.stdlib_module_names:
            return self._delegate(fullname, None, target, restrict=False)
        spec = self._delegate(fullname, None, target, restrict=True)
        if spec is None:
            return None
        location = spec.origin if spec.origin not in (None, "namespace", "built-in", "frozen") else None
        if location is None and spec.submodule_search_locations:
            location = next(iter(spec.submodule_search_locations), None)
        owners = self.owners(fullname)
        if location is None:
            return spec
        if _under(location, self.site_dirs) or not _under(location, self.cluster_roots):
            # an installed distribution (site-packages, or an editable install elsewhere)
            if owners & self.allowed:
                return self._hooked(fullname, spec)
            if not owners and _under(location, self.site_dirs):
                return self._refuse(fullname, owners)
            if not owners:
                return None  # a directory that exists on this machine only
            return self._refuse(fullname, owners)
        return self._hooked(fullname, spec)  # the uploaded code, DBFS, a wheel library

    def _refuse(self, fullname: str, owners: set[str]) -> None:
        # importlib.util.find_spec() probes answer "not found", imports raise the reason.
        frame = sys._getframe(1)
        for _ in range(4):
            if frame is None:
                break
            if frame.f_code.co_name == "find_spec" and frame.f_globals.get("__name__") == "importlib.util":
                return None
            frame = frame.f_back
        dists = ", ".join(sorted(owners)) or "unknown"
        raise ModuleNotFoundError(
            f"No module named '{fullname}' (library not installed on the cluster; distribution: {dists})",
            name=fullname,
        )

    def _hooked(self, fullname: str, spec: Any) -> Any:
        hook = self.post_import_hooks.get(fullname)
        if spec is not None and hook is not None and spec.loader is not None:
            spec.loader = _HookedLoader(spec.loader, hook)
        return spec

    def find_distributions(self, *args: Any, **kwargs: Any) -> Iterable[Any]:
        # importlib.metadata discovers distributions (versions, entry points) through
        # sys.meta_path: the cluster's only, unless the guard itself is asking.
        bypassed = self.bypassed
        for finder in self.delegates:
            find = getattr(finder, "find_distributions", None)
            if find is None:
                continue
            for dist in find(*args, **kwargs):
                name = dist.metadata["Name"]
                if bypassed or (name and _canonical(name) in self.allowed):
                    yield dist

    def invalidate_caches(self) -> None:
        for finder in self.delegates:
            if hasattr(finder, "invalidate_caches"):
                finder.invalidate_caches()


class _Bypass:
    def __init__(self, local: threading.local):
        self.local = local

    def __enter__(self) -> None:
        self.local.depth = getattr(self.local, "depth", 0) + 1

    def __exit__(self, *exc: object) -> None:
        self.local.depth -= 1


class _HookedLoader:
    """Runs a hook on a module right after it is executed (to patch pyspark)."""

    def __init__(self, loader: Any, hook: Callable[[Any], None]):
        self._loader = loader
        self._hook = hook

    def create_module(self, spec: Any) -> Any:
        return self._loader.create_module(spec)

    def exec_module(self, module: Any) -> None:
        self._loader.exec_module(module)
        self._hook(module)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._loader, name)


class _Runtime:
    """The Databricks runtime objects of a driver: the SparkSession (lazily) and dbutils."""

    def __init__(self, spec: Mapping[str, Any], guard: Optional[_ClusterImportGuard]):
        self.spec = spec
        self.guard = guard
        self._session: Any = None
        self._creating = False
        self._lock = threading.RLock()

    def session(self) -> Any:
        if self._session is not None:
            return self._session
        with self._lock:
            if self._session is not None or self._creating:
                return self._session
            self._creating = True
            try:
                with self.guard.bypass() if self.guard else _nullcontext():
                    factory = _load_callable(self.spec["spark_factory"])
                    kwargs = dict(self.spec["spark_kwargs"])
                    if self.spec["spark_conf"]:
                        import inspect

                        if "extra_conf" in inspect.signature(factory).parameters:
                            kwargs["extra_conf"] = {**kwargs.get("extra_conf", {}), **self.spec["spark_conf"]}
                    self._session = factory(**kwargs)
                Path(self.spec["run_dir"], "spark-started").write_text(type(self._session).__module__)
            finally:
                self._creating = False
        return self._session

    def patch_pyspark_session(self, module: Any) -> None:
        """On a cluster the session exists before user code runs: make pyspark's lookups find it."""
        session_cls = module.SparkSession
        runtime = self
        original_active = session_cls.__dict__["getActiveSession"].__func__
        original_get_or_create = session_cls.Builder.getOrCreate

        def getActiveSession(cls: Any) -> Any:
            runtime.session()
            return original_active(cls)

        def getOrCreate(self: Any) -> Any:
            runtime.session()
            return original_get_or_create(self)

        session_cls.getActiveSession = classmethod(getActiveSession)
        session_cls.Builder.getOrCreate = getOrCreate

    def stop(self) -> None:
        if self._session is not None:
            try:
                self._session.stop()
            except Exception:
                pass


class _LazyProxy:
    """`sc` / `spark`: the object is built on first attribute access."""

    def __init__(self, factory: Callable[[], Any], name: str):
        object.__setattr__(self, "_factory", factory)
        object.__setattr__(self, "_name", name)

    def __getattr__(self, item: str) -> Any:
        return getattr(self._factory(), item)

    def __setattr__(self, item: str, value: Any) -> None:
        setattr(self._factory(), item, value)

    def __repr__(self) -> str:
        return f"<lazy Databricks runtime {self._name}>"


class _nullcontext:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def _load_callable(target: str) -> Callable[..., Any]:
    import importlib
    import importlib.util

    location, _, attr = target.rpartition(":")
    if location.endswith(".py"):
        name = "_databricks_emulator_spark_factory"
        spec = importlib.util.spec_from_file_location(name, location)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    else:
        module = importlib.import_module(location)
    return getattr(module, attr)


class IllegalArgumentException(ValueError):
    """What `dbutils.secrets.get` raises on Databricks for an unknown scope or key."""


@dataclasses.dataclass(frozen=True)
class _SecretMetadata:
    key: str


@dataclasses.dataclass(frozen=True)
class _SecretScope:
    name: str


@dataclasses.dataclass(frozen=True)
class _FileInfo:
    path: str
    name: str
    size: int
    modificationTime: int


class _Secrets:
    def __init__(self, secrets_file: str):
        with open(secrets_file) as fh:
            self._values = {(scope, key): value for scope, key, value in json.load(fh)}

    def get(self, scope: str, key: str) -> str:
        if (scope, key) not in self._values:
            raise IllegalArgumentException(f"Secret does not exist with scope: {scope} and key: {key}")
        return self._values[(scope, key)]

    def getBytes(self, scope: str, key: str) -> bytes:
        return self.get(scope, key).encode()

    def list(self, scope: str) -> list[_SecretMetadata]:
        if not any(s == scope for s, _ in self._values):
            raise IllegalArgumentException(f"Scope {scope} does not exist!")
        return [_SecretMetadata(k) for s, k in sorted(self._values) if s == scope]

    def listScopes(self) -> list[_SecretScope]:
        return [_SecretScope(s) for s in sorted({s for s, _ in self._values})]


class _Fs:
    def __init__(self, dbfs_root: str):
        self._root = Path(dbfs_root)

    def _local(self, path: str) -> Path:
        if path.startswith("dbfs:"):
            path = path[len("dbfs:") :]
        elif path.startswith("/dbfs/"):
            path = path[len("/dbfs") :]
        relative = posixpath.normpath("/" + path.lstrip("/")).lstrip("/")
        if relative.startswith(".."):
            raise IllegalArgumentException(f"Invalid path {path}")
        return self._root / relative

    def ls(self, path: str) -> list[_FileInfo]:
        local = self._local(path)
        if not local.exists():
            raise FileNotFoundError(f"File {path} does not exist.")
        entries = sorted(local.iterdir()) if local.is_dir() else [local]
        return [
            _FileInfo(
                "dbfs:/" + e.relative_to(self._root).as_posix() + ("/" if e.is_dir() else ""),
                e.name + ("/" if e.is_dir() else ""),
                0 if e.is_dir() else e.stat().st_size,
                int(e.stat().st_mtime * 1000),
            )
            for e in entries
        ]

    def put(self, path: str, contents: str, overwrite: bool = False) -> bool:
        local = self._local(path)
        if local.exists() and not overwrite:
            raise FileExistsError(f"File {path} already exists.")
        local.parent.mkdir(parents=True, exist_ok=True)
        local.write_text(contents)
        return True

    def head(self, path: str, maxBytes: int = 65536) -> str:
        with self._local(path).open("rb") as fh:
            return fh.read(maxBytes).decode(errors="replace")

    def mkdirs(self, path: str) -> bool:
        self._local(path).mkdir(parents=True, exist_ok=True)
        return True

    def rm(self, path: str, recurse: bool = False) -> bool:
        local = self._local(path)
        if not local.exists():
            return False
        if local.is_dir():
            if recurse:
                shutil.rmtree(local)
            else:
                local.rmdir()
        else:
            local.unlink()
        return True

    def cp(self, source: str, dest: str, recurse: bool = False) -> bool:
        src, dst = self._local(source), self._local(dest)
        dst.parent.mkdir(parents=True, exist_ok=True)
        if src.is_dir():
            if not recurse:
                raise IllegalArgumentException(f"{source} is a directory: pass recurse=True")
            shutil.copytree(src, dst, dirs_exist_ok=True)
        else:
            shutil.copy2(src, dst)
        return True

    def mv(self, source: str, dest: str, recurse: bool = False) -> bool:
        dst = self._local(dest)
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(self._local(source)), str(dst))
        return True


class _DbUtils:
    def __init__(self, spec: Mapping[str, Any]):
        self.secrets = _Secrets(spec["secrets_file"])
        # Serverless: no DBFS (the emulator's dbutils.fs serves DBFS paths only).
        self.fs = _Fs(spec["dbfs_root"]) if spec["dbfs_root"] else None

    def __repr__(self) -> str:
        return "<emulated Databricks dbutils>"


def _install_dbruntime(spec: Mapping[str, Any], namespace: Mapping[str, Any]) -> None:
    """The runtime's `dbruntime` modules, which databricks-sdk probes on a cluster.

    `databricks.sdk.runtime` then exposes the driver's `spark`, `sc` and `dbutils`
    (`from databricks.sdk.runtime import spark` in library code), and a
    `WorkspaceClient()` without credentials authenticates as the run
    (`auth_type == "runtime"`) against the emulator, as on a cluster.
    """
    import types

    host = f"http://{spec['workspace_url']}"
    context = types.SimpleNamespace(
        workspaceUrl=spec["workspace_url"], apiToken=spec["api_token"], clusterId=os.environ.get("DB_CLUSTER_ID")
    )

    def init_runtime_native_auth() -> tuple[str, Callable[[], dict[str, str]]]:
        return host, lambda: {"Authorization": f"Bearer {spec['api_token']}"}

    class UserNamespaceInitializer:
        @classmethod
        def getOrCreate(cls) -> "UserNamespaceInitializer":
            return cls()

        def get_namespace_globals(self) -> Mapping[str, Any]:
            return namespace

    package = types.ModuleType("dbruntime")
    package.__path__ = []  # type: ignore[attr-defined]
    package.UserNamespaceInitializer = UserNamespaceInitializer  # type: ignore[attr-defined]
    repl = types.ModuleType("dbruntime.databricks_repl_context")
    repl.get_context = lambda: context  # type: ignore[attr-defined]
    provider = types.ModuleType("dbruntime.sdk_credential_provider")
    provider.init_runtime_native_auth = init_runtime_native_auth  # type: ignore[attr-defined]
    package.databricks_repl_context = repl  # type: ignore[attr-defined]
    package.sdk_credential_provider = provider  # type: ignore[attr-defined]
    for module in (package, repl, provider):
        sys.modules.setdefault(module.__name__, module)


def connect_session(remote: str) -> Any:
    """A serverless driver's `spark`: a Spark Connect client session of `remote`."""
    from pyspark.sql import SparkSession

    os.environ["SPARK_REMOTE"] = remote  # `SparkSession.builder.getOrCreate()` in the task finds it
    return SparkSession.builder.remote(remote).getOrCreate()


def _mount(mounts: Mapping[str, str]) -> None:
    """A stand-in for the driver's FUSE mounts (`/dbfs`, `/Volumes`), for Python file APIs only.

    Paths under a mount point (`/dbfs`, `/dbfs/...`; `/Volumes/...`) given to `open`
    (`builtins`, `io`, hence `pathlib`), `os.open`, `os.stat` / `os.lstat` (hence
    `os.path.exists` / `isdir` / `isfile`), `os.listdir`, `os.scandir`, `os.mkdir` (hence
    `os.makedirs`), `os.remove` / `os.unlink`, `os.rmdir` (hence `shutil.rmtree`) and
    `os.rename` / `os.replace` resolve under the emulator's DBFS or volumes directory (what
    dagster-pipes' DBFS and Unity Catalog volume loaders and writers use). Spark (the JVM),
    native code and subprocesses do not see the mounts: give them `dbfs:/` URIs.
    """
    import builtins
    import functools
    import io

    roots = {point: os.path.realpath(root) for point, root in mounts.items()}

    def local(path: Any) -> Any:
        if isinstance(path, int):
            return path  # a file descriptor
        try:
            text = os.fsdecode(os.fspath(path))
        except TypeError:
            return path
        point = next((p for p in roots if text == p or text.startswith(p + "/")), None)
        if point is None:
            return path
        relative = posixpath.normpath("/" + text[len(point) :].lstrip("/")).lstrip("/")
        return os.path.join(roots[point], relative) if relative else roots[point]

    def wrap(func: Callable[..., Any], arity: int = 1) -> Callable[..., Any]:
        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            args = tuple(local(a) if i < arity else a for i, a in enumerate(args))
            return func(*args, **kwargs)

        return wrapper

    patched_open = wrap(io.open)
    builtins.open = io.open = patched_open  # type: ignore[assignment]
    names = {name: 1 for name in ("open", "stat", "lstat", "listdir", "scandir", "mkdir", "remove", "unlink", "rmdir")}
    names.update(rename=2, replace=2)
    for name, arity in names.items():
        original = getattr(os, name)
        patched = wrap(original, arity)
        setattr(os, name, patched)
        # `shutil.rmtree` & co. test `os.stat in os.supports_dir_fd`: keep those answers.
        for capability in (os.supports_dir_fd, os.supports_fd, os.supports_follow_symlinks):
            if original in capability:
                capability.add(patched)


def _summarize(exc: BaseException) -> str:
    chain = []
    seen = set()
    current: Optional[BaseException] = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        chain.append(current)
        current = current.__cause__ or current.__context__
    head = f"{type(exc).__name__}: {exc}"
    root = chain[-1]
    if root is not exc:
        head += f" (caused by {type(root).__name__}: {root})"
    return head[:4000]


def _runtime_main(spec_path: str) -> int:
    import runpy
    import traceback

    with open(spec_path) as fh:
        spec = json.load(fh)
    run_dir = Path(spec["run_dir"])

    # 1. Library installation (the run is PENDING until this is done).
    try:
        allowed = _install_libraries(spec["runtime_libraries"], spec["libraries"])
    except _LibraryInstallError as e:
        print(f"Library installation failed: {e.message}", file=sys.stderr)
        (run_dir / "library-error.json").write_text(json.dumps({"library": e.library, "message": e.message}))
        return _EXIT_LIBRARY_ERROR
    for lib in spec["libraries"]:
        if "whl" in lib:
            sys.path.insert(0, lib["whl"])  # pure-Python wheels import straight from the archive
    (run_dir / "installed-libraries.json").write_text(json.dumps(sorted(allowed)))

    # 2. What the cluster has and what the runtime provides.
    guard = _ClusterImportGuard(allowed, spec["cluster_roots"]) if spec["enforce"] else None
    runtime = _Runtime(spec, guard)
    if guard is not None:
        guard.post_import_hooks["pyspark.sql.session"] = runtime.patch_pyspark_session
        guard.install()
    else:
        _PatchOnImport.install("pyspark.sql.session", runtime.patch_pyspark_session)
    init_globals = {
        "spark": _LazyProxy(runtime.session, "spark"),
        "dbutils": _DbUtils(spec),
    }
    if not spec["serverless"]:  # serverless compute has no SparkContext
        init_globals["sc"] = _LazyProxy(lambda: runtime.session().sparkContext, "sc")
    _install_dbruntime(spec, init_globals)
    _mount({"/Volumes": spec["volumes_root"], **({"/dbfs": spec["dbfs_root"]} if spec["dbfs_root"] else {})})

    # 3. The task.
    sys.argv = [spec["python_file"], *spec["parameters"]]
    try:
        runpy.run_path(spec["python_file"], init_globals=init_globals, run_name="__main__")
        return 0
    except SystemExit as e:
        if e.code in (None, 0):
            return 0
        error, trace, code = f"SystemExit: {e.code}", "", (e.code if isinstance(e.code, int) else 1)
    except BaseException as e:
        traceback.print_exc()
        error, trace, code = f"{type(e).__name__}: {e}", traceback.format_exc(), 1
        (run_dir / "error.json").write_text(json.dumps({"error": error, "error_trace": trace, "summary": _summarize(e)}))
        return code
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        runtime.stop()
    (run_dir / "error.json").write_text(json.dumps({"error": error, "error_trace": trace, "summary": error}))
    return code


class _PatchOnImport:
    """Without the guard: a minimal meta-path hook that patches a module after it loads."""

    @staticmethod
    def install(fullname: str, hook: Callable[[Any], None]) -> None:
        class _Finder:
            def find_spec(self, name: str, path: Any = None, target: Any = None) -> Any:
                if name != fullname:
                    return None
                sys.meta_path.remove(self)
                try:
                    import importlib.util

                    spec = importlib.util.find_spec(name)
                finally:
                    sys.meta_path.insert(0, self)
                if spec is not None and spec.loader is not None:
                    spec.loader = _HookedLoader(spec.loader, hook)
                return spec

        sys.meta_path.insert(0, _Finder())
