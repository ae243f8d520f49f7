"""Shared fixtures: one SparkSession for the whole test session, a real HTTP
server on 127.0.0.1 serving the lookup files, and temporary lakes."""

from __future__ import annotations

import datetime as dt
import functools
import http.server
import threading
from pathlib import Path

import pytest

DATA_DIR = Path(__file__).resolve().parent.parent / "netflix_assets" / "data"
TUTORIAL_DIR = DATA_DIR / "netflix_tutorial"
KAGGLE_TITLES = DATA_DIR / "netflix_kaggle" / "netflix_titles.csv"


@pytest.fixture(scope="session")
def spark():
    # Starting a JVM costs ~10 s: every test (and every Dagster run in the
    # tests, through SparkResource) shares this one session.
    from netflix_assets.resources.spark import get_or_create_session

    session = get_or_create_session(driver_memory="2g")
    yield session
    session.stop()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep pytest output readable
        pass


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


@pytest.fixture
def today() -> str:
    return dt.datetime.now(dt.timezone.utc).date().isoformat()
