"""The same code on Spark Connect (what Databricks serverless and `make dev`'s warm server speak):
the whole graph run on the bundled data through a local Spark Connect server equals the classic
session's run, table for table and row for row, with the same check results, and a terminated run's
interruption ends a query of the client's; a remote that is not there, or is not Spark Connect, costs
the run a warning, not its success.

The Connect run is a child process: a process that has made a Connect session is in Connect
mode for good (pyspark switches `pyspark.sql.functions` to Connect), and the suite's own runs
use the classic session."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path


from netflix_assets.resources import spark_connect
from netflix_assets.resources.spark import REMOTE_ENV, SparkResource

from netflix_assets_tests.conftest import TUTORIAL_DIR
from netflix_assets_tests.lakehouse import Lakehouse, check_results, unexpected_failures
from netflix_assets_tests.test_step_threads import assert_interrupted, interrupt_a_long_query

PROJECT = Path(__file__).resolve().parents[2]


def _main(spec: str) -> None:
    args = json.loads(spec)
    os.environ[REMOTE_ENV] = os.environ["NETFLIX_TEST_REMOTE"]  # after conftest's import, which clears it
    lake = Lakehouse.create(Path(args["root"]), args["lookup_url"])
    lake.land(TUTORIAL_DIR / "netflix_titles.csv", "netflix_titles.csv")
    result = lake.run(args["day"])
    session = lake.defs.resources["spark"].process_config_and_initialize().get_session()
    print(json.dumps({
        "session": type(session).__module__,
        "failures": unexpected_failures(result),
        "checks": check_results(result),
        "interrupt": interrupt_a_long_query(session),  # what a terminated run does (step_threads.py)
    }))


def test_the_graph_on_spark_connect_equals_the_classic_run(tutorial_lake, lookup_server, connect_url, tmp_path):
    root = tmp_path / "lake"
    spec = json.dumps({"root": str(root), "lookup_url": lookup_server, "day": tutorial_lake.day})
    child = subprocess.run(  # the URL (with the server's token) through the environment, not argv
        [sys.executable, "-m", "netflix_assets_tests.resources.test_spark_connect", spec],
        cwd=PROJECT, capture_output=True, text=True, timeout=1800, env={**os.environ, "NETFLIX_TEST_REMOTE": connect_url},
    )
    assert child.returncode == 0, child.stderr[-4000:]
    out = json.loads(child.stdout.strip().splitlines()[-1])
    assert out["session"].startswith("pyspark.sql.connect"), out["session"]
    assert out["failures"] == [], out["failures"]
    assert out["checks"] == check_results(tutorial_lake.result)
    assert_interrupted(out["interrupt"])

    connect = Lakehouse.create(root, lookup_server)
    classic = tutorial_lake.lake
    assert connect.tables() == classic.tables()
    for table in classic.tables():  # delta-rs reads each: no type only Spark can read
        got, want = connect.state(table, tutorial_lake.day), classic.state(table, tutorial_lake.day)
        assert got == want, f"{table}: {len(got)} rows vs {len(want)}; first differences {sorted(set(got) ^ set(want))[:3]}"


def test_a_remote_where_nothing_answers_costs_a_warning_and_a_jvm(spark, caplog):
    remote = spark_connect.url(spark_connect.free_port())
    with caplog.at_level(logging.WARNING):
        session = SparkResource(remote=remote).get_session()
    assert session is spark  # this process's own (classic) session
    assert f"Spark Connect at {remote}" in caplog.text and "nothing answers there" in caplog.text


def test_a_remote_that_is_not_spark_connect_costs_a_warning_not_a_hang(spark, lookup_server, caplog):
    """An HTTP server on the port: the Connect client would retry it for minutes."""
    remote = "sc://" + lookup_server.split("://", 1)[1].rstrip("/")
    with caplog.at_level(logging.WARNING):
        session = SparkResource(remote=remote).get_session()
    assert session is spark
    assert "does not speak gRPC" in caplog.text
    assert "SPARK_CONNECT_MODE_ENABLED" not in os.environ


def test_the_server_answers_only_clients_that_send_its_token(connect_url, tmp_path):
    """Any user of the machine could otherwise send `make dev`'s server work (Python functions its workers
    unpickle) that runs as the developer. The suite's server is started as `make dev` starts its own. A
    child process: a Connect session would switch this one to Connect mode."""
    code = ("import os; from pyspark.sql import SparkSession\n"
            "try: print(SparkSession.builder.remote(os.environ['REMOTE']).create().range(3).count())\n"
            "except Exception as error: print('refused' if 'UNAUTHENTICATED' in str(error) else repr(error)[:300])")
    port = connect_url.split("://localhost:", 1)[1].split("/", 1)[0]
    answers = [
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=PROJECT,
                       env={**os.environ, "REMOTE": remote}).stdout.strip().splitlines()[-1:]
        for remote in (connect_url, f"sc://127.0.0.1:{port}", f"sc://localhost:{port}/;token=guessed")
    ]
    assert answers == [["3"], ["refused"], ["refused"]]
    assert "token" not in " ".join(spark_connect.command(int(port), tmp_path)).lower()


def test_make_dev_stops_what_dg_dev_left_running_when_dg_dev_exits_by_itself(tmp_path):
    # `dg dev` crashing or killed alone left its webserver and daemon running, orphaned.
    fake_dg = tmp_path / "dg"
    fake_dg.write_text(f"#!/bin/bash\nsleep 300 &\necho $! > {tmp_path}/webserver.pid\nexit 3\n")
    fake_dg.chmod(0o755)
    code = ("import sys; from netflix_assets import devserver; devserver._dg = lambda: [sys.argv[1]]; "
            "devserver.GRACE = 3.0; sys.exit(devserver.main([]))")
    env = {**os.environ, REMOTE_ENV: "sc://127.0.0.1:9"}  # names a server: none is started
    done = subprocess.run([sys.executable, "-c", code, str(fake_dg)], capture_output=True, text=True, timeout=60,
                          cwd=PROJECT, env=env)
    assert done.returncode == 3, done.stderr[-2000:]
    assert "`dg dev` exited; stopping what it left running" in done.stderr
    webserver = int((tmp_path / "webserver.pid").read_text())
    try:
        os.kill(webserver, 0)
    except ProcessLookupError:
        return
    os.kill(webserver, 9)
    raise AssertionError("the process `dg dev` started outlived make dev")


if __name__ == "__main__":
    _main(sys.argv[1])
