"""Crash points for the fault-injection tests: `NETFLIX_FAULT_POINT=<point>` makes the
process kill itself with SIGKILL when it reaches `<point>`.

A run of this project makes many Delta commits (the ledger's claim, bronze, its quarantine,
the ledger's statuses, each silver, quarantine and gold table); each is atomic, and what
must hold is that a run stopped between any two of them converges once the product does
what it does next (the sensor re-requests the batch, a user re-materializes the day).
SIGKILL is the honest way to stop it there: no `finally`, no Dagster failure handling, no
JVM shutdown hook, as when a container is restarted or the kernel's OOM killer fires.
`netflix_assets_tests/lib/test_crash_points.py` kills a run at every point named here.

Points: `after_claim` (the ledger's claim MERGE), `after_commit:<layer>/<table>` (any
table write, the ledger's statuses included: `after_commit:bronze/_ingested_files`).
Unset (always, outside those tests) the hook costs one dictionary lookup.
"""

import os
import signal
import sys

# Read here with os.environ, not through `settings`: this module ships in the Pipes task's wheel,
# which carries no `settings.py` (the name is declared there all the same).
FAULT_ENV = "NETFLIX_FAULT_POINT"


def reached(point: str) -> None:
    if os.environ.get(FAULT_ENV) == point:
        print(f"fault injection: SIGKILL at {point}", file=sys.stderr, flush=True)
        os.kill(os.getpid(), signal.SIGKILL)


def after_commit(uri: str) -> None:
    """The point after a commit to the table at `uri` (`.../<layer>/<table>`)."""
    if FAULT_ENV in os.environ:
        reached("after_commit:" + "/".join(uri.rstrip("/").split("/")[-2:]))
