"""`make dev`: Dagster's local UI (`dg dev`: webserver, daemon, code servers and the runs they
launch) that stops whole, within 10 s, on Ctrl-C or SIGTERM.

Why a wrapper: measured here on 2 busy cores, `dg dev` stops its services and a run's worker and
JVM in 5-10 s when its process group gets one SIGINT or SIGTERM. Signalled otherwise (SIGTERM to
`dg dev` alone, or a second signal while it shuts down), its webserver stayed up for minutes,
and `dg dev` with it, waiting. So `dg dev` runs in a process group of its own; the first signal
this process gets is passed on to that group once, and what is left of the group GRACE seconds
later is killed. A run killed that way stays STARTED until run monitoring fails it
(deploy/local/dagster.yaml).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

GRACE = 7.0


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def main(argv: list[str]) -> int:
    dg = os.path.join(os.path.dirname(sys.executable), "dg")
    child = subprocess.Popen([dg, "dev", *argv], preexec_fn=os.setpgrp)
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
    if stopping.is_set():
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
    return child.wait()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
