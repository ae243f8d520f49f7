"""`make dev`: Dagster's local UI (`dg dev`: webserver, daemon, code servers and the runs they
launch) that stops whole, within 10 s, on Ctrl-C or SIGTERM.

Why a wrapper: measured here on 2 busy cores, `dg dev` stops its services and a run's worker and
JVM in 5-10 s when its process group gets one SIGINT or SIGTERM. Signalled otherwise (SIGTERM to
`dg dev` alone, or a second signal while it shuts down), its webserver stayed up for minutes,
and `dg dev` with it, waiting. So `dg dev` runs in a process group of its own; the first signal
this process gets is passed on to that group once, and what is left of the group GRACE seconds
later is killed. A run killed that way stays STARTED until run monitoring fails it
(deploy/local/dagster.yaml).

It also runs the warm Spark Connect server every run of this UI uses (`resources/spark_connect.py`):
started in the background on NETFLIX_SPARK_CONNECT_PORT (15002; a free port when that one is
taken) unless NETFLIX_SPARK_REMOTE already names one, its log under DAGSTER_HOME/spark-connect,
and stopped with `dg dev`. It answers only the runs of this UI, which get its token with its URL.
Runs that start before the server is up (~10 s) warn and use their own JVM. When `dg dev` ends by itself (a crash), what it started is stopped
too, and `dg dev` gets SIGTERM if this process dies.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

from . import settings

GRACE = 7.0


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def _spark_server() -> tuple[str | None, subprocess.Popen | None]:
    """The Spark Connect endpoint for this UI's runs (None: each run starts its own JVM), and the
    server process if this started it."""
    from pathlib import Path

    from .resources import spark_connect
    from .resources.spark import REMOTE_ENV, answers

    if settings.get(REMOTE_ENV):
        return settings.get(REMOTE_ENV), None
    port = int(settings.get(spark_connect.PORT_ENV) or spark_connect.DEFAULT_PORT)
    if answers(spark_connect.url(port), timeout=1.0):
        # Another `make dev`'s server (its token is not this one's), or anything else.
        taken, port = port, spark_connect.free_port()
        print(f"make dev: port {taken} is taken; this UI's Spark Connect server starts on port {port}",
              file=sys.stderr, flush=True)
    token = spark_connect.new_token()
    home = Path(os.environ.get("DAGSTER_HOME") or ".dagster_home")
    return spark_connect.url(port, token), spark_connect.start(port, home / "spark-connect", token)


def _dg() -> list[str]:
    """The `dg` command of this environment."""
    return [os.path.join(os.path.dirname(sys.executable), "dg")]


def main(argv: list[str]) -> int:
    from .resources import spark_connect
    from .resources.spark import REMOTE_ENV

    remote, server = _spark_server()
    try:
        env = {**os.environ, **({REMOTE_ENV: remote} if remote else {})}
        # Its own group, and SIGTERM when this process dies, even by SIGKILL (Linux).
        child = subprocess.Popen([*_dg(), "dev", *argv], preexec_fn=spark_connect.own_group_ending_with_parent, env=env)
    except BaseException:
        spark_connect.stop(server)
        raise
    stopping = threading.Event()

    def on_signal(signum: int, _frame) -> None:
        if not stopping.is_set():
            stopping.set()
            try:
                os.killpg(child.pid, signal.SIGTERM if signum == signal.SIGHUP else signum)
            except ProcessLookupError:
                pass

    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, on_signal)
    while child.poll() is None and not stopping.wait(0.5):
        pass
    # The server stops while `dg dev` does: both within GRACE.
    stopper = threading.Thread(target=spark_connect.stop, args=(server, GRACE - 2), daemon=True)
    stopper.start()
    if not stopping.is_set():
        # `dg dev` ended by itself (a crash, a kill of it alone): what it started would outlive it.
        child.poll()
        if _group_alive(child.pid):
            print("make dev: `dg dev` exited; stopping what it left running", file=sys.stderr, flush=True)
            try:
                os.killpg(child.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
    deadline = time.monotonic() + GRACE
    while _group_alive(child.pid) and time.monotonic() < deadline:
        child.poll()  # reap dg itself, so that only live members keep the group
        time.sleep(0.2)
    if _group_alive(child.pid):
        print(f"make dev: still running {GRACE:g} s after the signal; killing the rest", file=sys.stderr, flush=True)
        try:
            os.killpg(child.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    code = child.wait()
    stopper.join(timeout=GRACE)
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
