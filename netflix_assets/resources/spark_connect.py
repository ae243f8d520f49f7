"""The local Spark Connect server: one warm JVM that the runs of `make dev` share.

Why: every run the UI, the sensor or a schedule launches is a new process, and a process that
builds its own SparkSession pays a JVM start (~12 s on 2 cores) and then runs every query on a
cold JIT. A client of a running server answers its first query in ~1 s and reads a Delta table
in 0.4 s instead of 5.3 s (BENCHMARKS.md, "A warm Spark Connect server"). The runs find the server through
`NETFLIX_SPARK_REMOTE` (`resources/spark.py`), which `make dev` sets (`devserver.py`).

What the server is: pyspark's own `SparkConnectServer` (its jar ships in the pyspark wheel: no
download), started with `spark-submit` and the same local conf and Delta jars as an in-process
session, bound to 127.0.0.1 only. Python workers are not reused across tasks on this server:
they would keep the package's modules imported from the last run, so a file edited while
`make dev` runs would be parsed by the old code; a fresh worker imports the edited one.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Optional

from .spark import LOCAL_SPARK_CONF, answers, delta_jars, delta_maven_coordinate

DEFAULT_PORT = 15002  # Spark Connect's own default
PORT_ENV = "NETFLIX_SPARK_CONNECT_PORT"
SERVER_CLASS = "org.apache.spark.sql.connect.service.SparkConnectServer"


def url(port: int, token: Optional[str] = None) -> str:
    """The server's URL; with its `token`, named `localhost`: pyspark's client sends a token in clear
    only to `localhost` (to any other host it requires TLS)."""
    return f"sc://localhost:{port}/;token={token}" if token else f"sc://127.0.0.1:{port}"


def new_token() -> str:
    """A server's authentication token. Without one, any user of the machine could send the server
    work (Python functions its workers unpickle and run) that runs as the developer, with their
    credentials."""
    import secrets

    return secrets.token_urlsafe(24)


# Spark's default for an application is INFO (~6 MB of log per run of the graph); warnings are
# what a user looks for in the server's log.
LOG4J2 = """\
rootLogger.level = warn
rootLogger.appenderRef.stderr.ref = console
appender.console.type = Console
appender.console.name = console
appender.console.target = SYSTEM_ERR
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = %d{yy/MM/dd HH:mm:ss} %p %c{1}: %m%n%ex
"""


def command(port: int, log_dir: Path, driver_memory: str = "4g", reuse_workers: bool = False,
            jars: Optional[list[str]] = None) -> list[str]:
    """The server's `spark-submit`: Delta's `jars` on disk, or (None) its Maven coordinate for Ivy."""
    import pyspark

    submit = Path(pyspark.__file__).parent / "bin" / "spark-submit"
    log_conf = log_dir / "log4j2.properties"
    log_conf.write_text(LOG4J2)
    java_options = f"{LOCAL_SPARK_CONF['spark.driver.extraJavaOptions']} -Dlog4j2.configurationFile=file:{log_conf}"
    conf = {
        **LOCAL_SPARK_CONF,
        "spark.driver.extraJavaOptions": java_options,
        "spark.connect.grpc.binding.address": "127.0.0.1",
        "spark.connect.grpc.binding.port": str(port),
        "spark.driver.memory": driver_memory,
        "spark.python.worker.reuse": "true" if reuse_workers else "false",
    }
    cmd = [str(submit), "--master", "local[2]", "--name", "netflix-spark-connect", "--class", SERVER_CLASS,
           *(["--jars", ",".join(jars)] if jars else ["--packages", delta_maven_coordinate()])]
    for key, value in conf.items():
        cmd += ["--conf", f"{key}={value}"]
    return [*cmd, "spark-internal"]


def own_group_ending_with_parent() -> None:
    os.setpgrp()  # `stop` signals the group: the JVM and its Python workers
    try:  # Linux: the JVM gets SIGTERM when the process that started it dies, even by SIGKILL
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except Exception:  # noqa: BLE001 - elsewhere `stop` is what ends it
        pass


def start(port: int, log_dir: Path, token: str, driver_memory: str = "4g", reuse_workers: bool = False) -> subprocess.Popen:
    """Start the server in a process group of its own that ends with this process; its output
    goes to `log_dir/server.log`. `spark-submit` execs the JVM, so the JVM is the child. It
    answers only clients that send `token` (`url(port, token)`); the token goes through the
    server's environment, which only its user can read (a command line is shown to every user)."""
    log_dir = Path(log_dir).resolve()
    log_dir.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PYSPARK_PYTHON": sys.executable, "SPARK_LOCAL_IP": "127.0.0.1",
           "SPARK_CONNECT_AUTHENTICATE_TOKEN": token}
    env.pop("SPARK_REMOTE", None)
    resolution = contextlib.ExitStack()
    try:
        jars = resolution.enter_context(delta_jars(delta_maven_coordinate()))  # no Ivy run once resolved
        with open(log_dir / "server.log", "ab") as log:
            proc = subprocess.Popen(command(port, log_dir, driver_memory, reuse_workers, jars), stdout=log,
                                    stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                                    cwd=log_dir,  # anything Spark drops in its working directory
                                    preexec_fn=own_group_ending_with_parent)
    except BaseException:
        resolution.close()
        raise
    if jars is None:
        # Ivy resolves in the server's JVM, under this machine's lock (`spark.delta_jars`): held
        # until the server is up or gone, so that a run starting its own JVM meanwhile waits.
        threading.Thread(target=_release_when_up, args=(resolution, proc, port), daemon=True).start()
    else:
        resolution.close()
    return proc


def _release_when_up(resolution: contextlib.ExitStack, proc: subprocess.Popen, port: int, timeout: float = 600.0) -> None:
    started = time.monotonic()
    try:
        while proc.poll() is None and not answers(url(port), timeout=1.0) and time.monotonic() - started < timeout:
            time.sleep(0.5)
    finally:
        resolution.close()


def wait_ready(proc: subprocess.Popen, port: int, timeout: float = 180.0) -> float:
    """Seconds until the server accepts connections; raises if it exits or never does."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if proc.poll() is not None:
            raise RuntimeError(f"the Spark Connect server exited with {proc.returncode} before it was up")
        if answers(url(port), timeout=1.0):
            return time.monotonic() - started
        time.sleep(0.25)
    stop(proc)
    raise RuntimeError(f"the Spark Connect server did not answer on port {port} within {timeout:g} s")


def stop(proc: Optional[subprocess.Popen], grace: float = 5.0) -> None:
    """SIGTERM to the server's group, SIGKILL to what is left after `grace` seconds."""
    if proc is None or proc.poll() is not None:
        return
    for signum, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 10.0)):
        try:
            os.killpg(proc.pid, signum)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
