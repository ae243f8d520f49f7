"""The UI path end to end: `make dev` (webserver + daemon) on 127.0.0.1 with a
temporary DAGSTER_HOME and lake, driven through dagster-webserver's GraphQL API
and a real headless Chromium (Playwright with Debian's chromium).

Every process started here is stopped in a `finally`, whatever the assertions do.
Screenshots go to `netflix_assets_tests/artifacts/`; with NETFLIX_UPDATE_SCREENSHOTS=1
they also replace the README's `docs/screenshots/`.
"""

import datetime as dt
import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from netflix_assets.lib import clock
from netflix_assets.resources.landing import LandingZoneResource
from netflix_assets.resources.spark_connect import PORT_ENV
from netflix_assets.transforms.formats import LOOKUPS

from netflix_assets_tests.conftest import TUTORIAL_DIR, today_iso

PROJECT = Path(__file__).resolve().parent.parent
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
README_SHOTS = PROJECT / "docs" / "screenshots"
LOCATION = "netflix_assets"
REPOSITORY = "__repository__"
CONTRACT_TABLES = {
    f"{layer}/{table}"
    for layer in ("bronze", "silver", "gold")
    for table in ("netflix_titles", *LOOKUPS)
} | {f"gold/{t}" for t in ("dim_title", "dim_person", "fact_title_added", "kpi_top_countries", "kpi_rating_mix")}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Dagster:
    def __init__(self, url: str):
        self.url = url

    def gql(self, query: str, **variables) -> dict:
        body = json.dumps({"query": query, "variables": variables}).encode()
        request = urllib.request.Request(f"{self.url}/graphql", body, {"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=60) as response:
            payload = json.loads(response.read())
        assert not payload.get("errors"), payload["errors"]
        return payload["data"]

    def wait_for_run(self, run_id: str, timeout: float = 600) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            run = self.gql("query($id: ID!) { runOrError(runId: $id) { ... on Run { status } } }", id=run_id)["runOrError"]
            if run["status"] in ("SUCCESS", "FAILURE", "CANCELED"):
                return run["status"]
            time.sleep(2)
        raise TimeoutError(f"run {run_id} still running after {timeout}s")

    def launch(self, job: str, selection: list[dict], day: str) -> str:
        """Launch a run of `selection` for partition `day` as the UI does; its run id."""
        launched = self.gql(
            """mutation($params: ExecutionParams!) { launchRun(executionParams: $params) {
                 __typename ... on LaunchRunSuccess { run { runId } } ... on PythonError { message } } }""",
            params={
                "selector": {"repositoryLocationName": LOCATION, "repositoryName": REPOSITORY, "jobName": job,
                             "assetSelection": selection},
                "executionMetadata": {"tags": [{"key": "dagster/partition", "value": day}]},
            },
        )["launchRun"]
        assert launched["__typename"] == "LaunchRunSuccess", launched
        return launched["run"]["runId"]

    def run_times(self, run_id: str) -> dict:
        return self.gql(
            "query($id: ID!) { runOrError(runId: $id) { ... on Run { runId status startTime endTime } } }", id=run_id
        )["runOrError"]


def _partition_rows(lake: Path, table: str, day: str) -> int:
    """Rows of `table`'s partition `day` in the lake (delta-rs: no JVM in the test process)."""
    from deltalake import DeltaTable

    days = DeltaTable(str(lake / table)).to_pyarrow_table(columns=["ingest_date"]).column("ingest_date").to_pylist()
    return sum(str(d) == day for d in days)


@pytest.fixture(scope="module")
def dagster_dev(tmp_path_factory):
    home = tmp_path_factory.mktemp("dagster_home")
    shutil.copy(PROJECT / "deploy" / "local" / "dagster.yaml", home / "dagster.yaml")
    lake = tmp_path_factory.mktemp("lake")
    port = _free_port()
    # `make dev` starts its Spark Connect server on this port (not 15002: a developer's own `make dev`).
    env = {**os.environ, "DAGSTER_HOME": str(home), "NETFLIX_LAKE_URI": str(lake), PORT_ENV: str(_free_port())}
    log = open(tmp_path_factory.mktemp("logs") / "dagster_dev.log", "w")
    # The user's command: `make dev` (its own process group, as a terminal's job would be).
    process = subprocess.Popen(
        ["make", "--no-print-directory", "dev", f"DEV_PORT={port}"],
        cwd=PROJECT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 180
        while True:
            try:
                urllib.request.urlopen(f"{url}/server_info", timeout=2).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"make dev did not start; see {log.name}")
                time.sleep(1)
        client = Dagster(url)
        # The code location loads in its own process: wait until it serves the repository.
        while not _repository_loaded(client):
            if time.monotonic() > deadline:
                raise RuntimeError(f"code location did not load; see {log.name}")
            time.sleep(1)
        yield client, lake, Path(log.name), process
    finally:
        # dagster dev stops its webserver, daemon and code server on SIGTERM; the
        # process group catches anything left (run workers).
        for sig, wait in ((signal.SIGTERM, 60), (signal.SIGKILL, 10)):
            try:
                os.killpg(process.pid, sig)
                process.wait(timeout=wait)
                break
            except (ProcessLookupError, subprocess.TimeoutExpired):
                continue
        log.close()


def _repository_loaded(client: Dagster) -> bool:
    data = client.gql("{ repositoriesOrError { ... on RepositoryConnection { nodes { name location { name } } } } }")
    nodes = (data["repositoriesOrError"] or {}).get("nodes") or []
    return any(n["location"]["name"] == LOCATION for n in nodes)


@pytest.fixture(scope="module")
def walked(dagster_dev):
    """The user's path, in order; each step's findings for the tests below."""
    client, lake, log, _ = dagster_dev
    found = {}
    day = today_iso()

    found["graph"] = client.gql(
        "{ assetNodes { assetKey { path } dependencyKeys { path } "
        "assetChecksOrError { ... on AssetChecks { checks { name } } } } }"
    )["assetNodes"]

    # 1. Materialize one partition of a few assets from the "UI": the lookup pulls and bronze lookups.
    selection = [{"path": ["raw", "netflix_cast"]}, {"path": ["bronze", "netflix_cast"]}]
    run_id = client.launch("lakehouse_job", selection, day)
    found["manual_run"] = client.wait_for_run(run_id)
    found["bronze_cast"] = client.gql(
        """query($key: AssetKeyInput!) { assetOrError(assetKey: $key) { ... on Asset {
             assetMaterializations(limit: 1) { partition runId metadataEntries { label
               ... on IntMetadataEntry { intValue } ... on TextMetadataEntry { text } } } } } }""",
        key={"path": ["bronze", "netflix_cast"]},
    )["assetOrError"]["assetMaterializations"]
    found["cast_checks"] = client.gql(
        """query($key: AssetKeyInput!) { assetNodeOrError(assetKey: $key) { ... on AssetNode {
             assetChecksOrError { ... on AssetChecks { checks { name
               executionForLatestMaterialization { status evaluation { success } } } } } } } }""",
        key={"path": ["bronze", "netflix_cast"]},
    )["assetNodeOrError"]["assetChecksOrError"]["checks"]

    # 1b. The same day launched twice at once (a double click; a click during a sensor run): the
    # per-day run limit of deploy/local/dagster.yaml queues the second until the first has ended.
    found["cast_rows_one_run"] = _partition_rows(lake, "bronze/netflix_cast", day)
    pair = [client.launch("lakehouse_job", selection, day) for _ in range(2)]

    # 2. The landing-zone sensor: stopped, then turned on, then a file lands while the pair runs
    # (its batch run, of the same day, waits for them too).
    sensor = {"repositoryLocationName": LOCATION, "repositoryName": REPOSITORY, "sensorName": "landing_zone_sensor"}
    state = client.gql(
        "query($s: SensorSelector!) { sensorOrError(sensorSelector: $s) { ... on Sensor { sensorState { id status } } } }",
        s=sensor,
    )["sensorOrError"]["sensorState"]
    if state["status"] == "RUNNING":
        client.gql("mutation($id: String) { stopSensor(id: $id) { __typename } }", id=state["id"])
    started = client.gql(
        "mutation($s: SensorSelector!) { startSensor(sensorSelector: $s) { __typename ... on Sensor { sensorState { status } } } }",
        s=sensor,
    )["startSensor"]
    found["sensor_state"] = started["sensorState"]["status"]
    found["landed"] = LandingZoneResource(uri=str(lake / "raw" / "netflix_titles")).put_file(
        str(TUTORIAL_DIR / "netflix_titles.csv"), "netflix_titles.csv"
    )
    for pair_run in pair:
        client.wait_for_run(pair_run)
    found["pair"] = [client.run_times(pair_run) for pair_run in pair]
    found["cast_rows_two_runs"] = _partition_rows(lake, "bronze/netflix_cast", day)
    runs_query = """{ runsOrError(filter: {tags: [{key: "dagster/sensor_name", value: "landing_zone_sensor"}]}) {
                        ... on Runs { results { runId status } } } }"""
    deadline = time.monotonic() + 900
    sensor_runs = []
    while time.monotonic() < deadline:
        sensor_runs = client.gql(runs_query)["runsOrError"]["results"]
        if sensor_runs and sensor_runs[0]["status"] in ("SUCCESS", "FAILURE", "CANCELED"):
            break
        time.sleep(5)
    found["sensor_runs"] = sensor_runs
    found["sensor_run_messages"] = [
        e.get("message") or ""
        for run in sensor_runs[:1]
        for e in client.gql(
            "query($id: ID!) { logsForRun(runId: $id) { ... on EventConnection { events { ... on MessageEvent { message } } } } }",
            id=run["runId"],
        )["logsForRun"]["events"]
    ]
    found["sensor_run_times"] = [client.run_times(run["runId"]) for run in sensor_runs]
    found["gold_checks"] = client.gql(
        """{ assetNodeOrError(assetKey: {path: ["gold", "netflix_titles"]}) { ... on AssetNode {
             assetChecksOrError { ... on AssetChecks { checks { name blocking
               executionForLatestMaterialization { status } } } } } } }"""
    )["assetNodeOrError"]["assetChecksOrError"]["checks"]
    found["gold_materialization"] = client.gql(
        """{ assetOrError(assetKey: {path: ["gold", "netflix_titles"]}) { ... on Asset {
             assetMaterializations(limit: 1) { partition metadataEntries { label
               ... on IntMetadataEntry { intValue } } } } } }"""
    )["assetOrError"]["assetMaterializations"]
    found["log"] = log
    found["day"] = day
    return client, found


def test_asset_graph_has_the_contract_tables_edges_and_checks(walked):
    _, found = walked
    nodes = {"/".join(n["assetKey"]["path"]): n for n in found["graph"]}
    assert CONTRACT_TABLES <= set(nodes)
    parents = lambda key: {"/".join(d["path"]) for d in nodes[key]["dependencyKeys"]}  # noqa: E731
    assert "bronze/netflix_titles" in parents("silver/netflix_titles")
    assert "silver/netflix_titles" in parents("gold/netflix_titles")
    assert "gold/fact_title_added" in parents("gold/kpi_titles_added_by_month")
    for key in CONTRACT_TABLES:
        assert nodes[key]["assetChecksOrError"]["checks"], f"{key} has no checks"


def test_a_partition_materialized_through_graphql_succeeds_with_checks_and_metadata(walked):
    _, found = walked
    assert found["manual_run"] == "SUCCESS"
    [mat] = found["bronze_cast"]
    assert mat["partition"] == found["day"]
    entries = {e["label"]: e for e in mat["metadataEntries"]}
    assert entries["dagster/row_count"]["intValue"] > 0
    checks = {c["name"]: c["executionForLatestMaterialization"] for c in found["cast_checks"]}
    assert checks["header_recognised"]["status"] == "SUCCEEDED"
    assert checks["header_recognised"]["evaluation"]["success"] is True


def test_two_runs_of_one_day_launched_at_once_run_one_after_the_other(walked):
    _, found = walked
    assert [run["status"] for run in found["pair"]] == ["SUCCESS", "SUCCESS"], f"see {found['log']}"
    first, second = sorted(found["pair"], key=lambda run: run["startTime"])
    assert second["startTime"] >= first["endTime"], found["pair"]  # queued while the first ran
    # The lake is what one run leaves: the same rows as after the first materialization.
    [mat] = found["bronze_cast"]
    one_run = {e["label"]: e.get("intValue") for e in mat["metadataEntries"]}["dagster/row_count"]
    assert found["cast_rows_one_run"] == one_run > 0
    assert found["cast_rows_two_runs"] == found["cast_rows_one_run"]


def test_a_sensor_batch_of_the_day_waits_for_the_runs_in_progress(walked):
    _, found = walked
    assert found["sensor_run_times"], f"the sensor launched no run; see {found['log']}"
    last_end = max(run["endTime"] for run in found["pair"])
    for run in found["sensor_run_times"]:
        assert run["startTime"] >= last_end, (found["pair"], found["sensor_run_times"])


def test_the_sensor_runs_the_landed_file_through_gold(walked):
    _, found = walked
    assert found["sensor_state"] == "RUNNING"
    assert found["sensor_runs"], f"the sensor launched no run; see {found['log']}"
    assert found["sensor_runs"][0]["status"] == "SUCCESS", f"see {found['log']}"
    [mat] = found["gold_materialization"]
    rows = {e["label"]: e.get("intValue") for e in mat["metadataEntries"]}["dagster/row_count"]
    assert (mat["partition"], rows) == (found["day"], 6232)
    blocking = {c["name"]: c["executionForLatestMaterialization"]["status"] for c in found["gold_checks"] if c["blocking"]}
    assert blocking and set(blocking.values()) == {"SUCCEEDED"}
    # Through `make dev`'s warm Spark Connect server, not a JVM of the run's own.
    messages = found["sensor_run_messages"]
    assert any("Spark: a Spark Connect client of sc://localhost:" in m for m in messages), messages[:20]
    assert not any("token=" in m for m in messages), "the server's token stays out of the run's logs"
    assert not any("starts its own Spark JVM" in m for m in messages)


def _shoot(page, url: str, name: str, expect: list[str], click: str = "", element: str = "") -> Path:
    page.goto(url)
    page.wait_for_load_state("networkidle")
    # deploy/local/dagster.yaml turns off the first-visit "join the community" dialog.
    assert not page.get_by_role("button", name="Skip").count()
    if click:
        # Several entries may have the link (a KPI's chart and its lineage picture): open each
        # until the one showing `element`.
        links = page.get_by_text(click, exact=False)
        links.first.wait_for(timeout=60_000)
        for i in range(links.count()):
            links.nth(i).click(timeout=60_000)
            try:
                page.locator(element).first.wait_for(timeout=10_000)
                break
            except Exception:  # noqa: BLE001: playwright's TimeoutError: another entry's content
                page.keyboard.press("Escape")
    for text in expect:
        page.get_by_text(text, exact=False).first.wait_for(timeout=60_000)
    if element:
        page.locator(element).first.wait_for(timeout=60_000)
    page.wait_for_timeout(1500)  # let the graph layout settle
    if element.startswith("img"):  # drawn, not a broken-image icon (a data URI the UI refused)
        assert page.locator(element).first.evaluate("img => img.complete && img.naturalWidth > 0"), element
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path))
    if os.environ.get("NETFLIX_UPDATE_SCREENSHOTS") == "1":
        README_SHOTS.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, README_SHOTS / path.name)
    return path


def test_a_real_browser_shows_lineage_checks_and_sensor_runs(walked):
    from playwright.sync_api import sync_playwright

    client, _ = walked
    browser_path = shutil.which("chromium") or shutil.which("chromium-browser")
    assert browser_path, "make test installs Debian's chromium"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=browser_path,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--no-first-run"],
        )
        try:
            page = browser.new_page(viewport={"width": 1600, "height": 1000})
            shots = [
                _shoot(page, f"{client.url}/assets/gold/kpi_top_countries?view=lineage&lineageScope=upstream&lineageDepth=5",
                       "lineage", ["kpi_top_countries", "fact_title_added", "dim_country", "bronze", "silver"]),
                _shoot(page, f"{client.url}/assets/gold/netflix_titles?view=checks", "gold_netflix_titles_checks",
                       ["show_id_not_null_unique", "parity_expectations", "Passed"]),
                _shoot(page, f"{client.url}/assets/gold/fact_title_added", "gold_fact_title_added_columns",
                       ["years_to_netflix", "release_year"]),
                _shoot(page, f"{client.url}/locations/{LOCATION}/sensors/landing_zone_sensor", "sensor_runs",
                       ["landing_zone_sensor", "1 run requested"]),
                # Dagster 1.13's open-source UI draws no image metadata inline: a Markdown chart
                # opens from its metadata entry.
                _shoot(page, f"{client.url}/assets/gold/kpi_top_countries", "gold_kpi_top_countries_chart",
                       [], click="Show Markdown", element='img[alt="kpi_top_countries"]'),
                # The column lineage the open-source UI shows only as a raw entry, drawn (reporting/lineage.py).
                _shoot(page, f"{client.url}/assets/gold/kpi_top_countries", "gold_kpi_top_countries_column_lineage",
                       [], click="Show Markdown", element='img[alt="column lineage of gold/kpi_top_countries"]'),
            ]
        finally:
            browser.close()
    for shot in shots:
        assert shot.stat().st_size > 20_000, f"{shot} looks empty"


def test_terminate_stops_a_run_whose_steps_run_in_threads(dagster_dev, walked):
    """The UI's Terminate on a running run (GraphQL `terminateRun`, as the button): no step starts
    after it, the run ends CANCELED through the executor's own path (step_threads.py), not a kill."""
    client, _, log, _ = dagster_dev
    day = (clock.today() - dt.timedelta(days=2)).isoformat()
    selection = [{"path": [layer, table]} for table in LOOKUPS for layer in ("raw", "bronze")]
    run_id = client.launch("lakehouse_job", selection, day)
    stats = "query($id: ID!) { runOrError(runId: $id) { ... on Run { status stepStats { stepKey status } } } }"
    deadline = time.monotonic() + 300
    while not any(s["status"] == "IN_PROGRESS" for s in client.gql(stats, id=run_id)["runOrError"]["stepStats"]):
        assert time.monotonic() < deadline, f"no step of the run started in 300 s; see {log}"
        time.sleep(0.2)
    terminated = client.gql(
        """mutation($id: String!) { terminateRun(runId: $id) { __typename
             ... on TerminateRunFailure { message } ... on PythonError { message } } }""", id=run_id)["terminateRun"]
    assert terminated["__typename"] == "TerminateRunSuccess", terminated
    stop = time.monotonic()
    assert client.wait_for_run(run_id, timeout=120) == "CANCELED", f"see {log}"
    assert time.monotonic() - stop < 60
    events = client.gql(
        """query($id: ID!) { logsForRun(runId: $id) { ... on EventConnection { events { __typename
             ... on MessageEvent { message } } } } }""", id=run_id)["logsForRun"]["events"]
    kinds = [e["__typename"] for e in events]
    [at] = [i for i, e in enumerate(events) if (e.get("message") or "").startswith("Run terminated: no new step")]
    assert "ExecutionStepStartEvent" not in kinds[at:], kinds[at:]
    assert "ExecutionStepStartEvent" in kinds[:at] and "RunCanceledEvent" in kinds[at:], kinds


def _session(leader: subprocess.Popen) -> list[str]:
    """Every live process of the session `leader` heads (`make dev` and all it started)."""
    leader.poll()  # reap make itself once it has exited
    rows = subprocess.run(["ps", "-eo", "pid=,sid=,stat=,args="], capture_output=True, text=True, check=True).stdout
    return [
        " ".join(row.split()[:1] + row.split()[3:])[:160]
        for row in rows.splitlines()
        if row.split()[1] == str(leader.pid) and not row.split()[2].startswith("Z")
    ]


def test_make_dev_stops_within_10_s_of_sigterm_with_a_run_in_progress(dagster_dev, walked):
    """Last in the module: it stops the server the tests above share. A Ctrl-C in a terminal
    sends SIGINT to the same process group; measured by hand, it stops as fast (~7 s)."""
    client, _, log, process = dagster_dev
    day = (clock.today() - dt.timedelta(days=1)).isoformat()
    run_id = client.launch("lakehouse_job", [{"path": ["raw", "netflix_cast"]}, {"path": ["bronze", "netflix_cast"]}], day)
    deadline = time.monotonic() + 300
    while (status := client.run_times(run_id)["status"]) in ("QUEUED", "NOT_STARTED", "STARTING"):
        assert time.monotonic() < deadline, f"the run did not start in 300 s; see {log}"
        time.sleep(0.2)
    assert status == "STARTED", status  # its steps run on the Connect server, which stops too
    running = _session(process)
    os.killpg(process.pid, signal.SIGTERM)
    stop = time.monotonic() + 10
    while _session(process) and time.monotonic() < stop:
        time.sleep(0.2)
    left = _session(process)
    assert not left, f"still running 10 s after SIGTERM (of {len(running)}): {left}"
    assert process.returncode is not None
