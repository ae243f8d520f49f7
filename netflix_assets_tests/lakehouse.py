"""Running the real asset graph into a temporary lake, for end-to-end tests."""

import csv
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
from deltalake import DeltaTable

from netflix_assets import sensor_runs, step_threads
from netflix_assets.definitions import build_definitions
from netflix_assets.deployments import local_resources
from netflix_assets.resources.http_source import HttpSourceResource
from netflix_assets.resources.landing import LandingZoneResource

from netflix_assets_tests.conftest import TUTORIAL_DIR, today_iso


# Columns that differ between two runs of the same data at different times.
VOLATILE = frozenset({"_ingested_at", "_first_ingested", "discovered_at", "run_id", "modified_at", "etag", "fetched_at"})


@dataclass
class Lakehouse:
    root: Path
    defs: dg.Definitions
    instance: dg.DagsterInstance

    @classmethod
    def create(cls, root: Path, lookup_url: str, landing: LandingZoneResource | None = None) -> "Lakehouse":
        """A lake under `root`; the landing zone is `<root>/raw/netflix_titles` unless given.
        Files landed by tests are complete at once: `settle_seconds=0`."""
        landing = landing or LandingZoneResource(uri=str(root / "raw" / "netflix_titles"), settle_seconds=0)
        resources = local_resources(
            lake_uri=str(root), http_source=HttpSourceResource(base_url=lookup_url, backoff_seconds=0.01), landing=landing
        )
        return cls(root, build_definitions(resources), dg.DagsterInstance.ephemeral())

    @property
    def landing(self) -> LandingZoneResource:
        """The landing zone as a run sees it (EnvVar settings resolved)."""
        return self.defs.resources["landing"].process_config_and_initialize()

    def tick(self, cursor: str | None = None) -> dg.SensorResult:
        return sensor_runs.tick(self.defs, self.instance, cursor)

    def launch(self, request: dg.RunRequest) -> dg.ExecuteInProcessResult:
        return sensor_runs.launch(self.defs, self.instance, request)

    def land(self, source: Path, name: str) -> str:
        return self.landing.put_file(str(source), name)

    def run(self, day: str, asset_selection=None, tags=None) -> dg.ExecuteInProcessResult:
        job = self.defs.resolve_job_def("lakehouse_job")
        return step_threads.execute_in_process(
            job, partition_key=day, instance=self.instance, asset_selection=asset_selection, tags=tags
        )

    def rows(self, table: str, day: str | None = None) -> list[dict]:
        """Read a table with delta-rs: no Spark, no project code."""
        rows = DeltaTable(str(self.root / table)).to_pyarrow_table().to_pylist()
        return [r for r in rows if day is None or str(r["ingest_date"]) == day]

    def tables(self) -> list[str]:
        """Every Delta table of the lake, as `<layer>/<table>`."""
        return sorted(str(p.parent.relative_to(self.root)) for p in self.root.glob("*/*/_delta_log"))

    def state(self, table: str, day: str) -> list[tuple]:
        """A table's rows as sorted tuples that two runs of the same data agree on: the columns that
        record when it ran dropped (`VOLATILE`), the lake's and landing zone's roots and the day masked,
        also inside strings (a pulled lookup file's path holds its day: `raw/api/<dataset>/<day>/...`)."""
        roots = [self.landing.root_uri(), str(self.root)]

        def masked(value):
            if str(value) == day:
                return "<day>"
            if isinstance(value, str):
                for root in roots:
                    value = value.replace(root, "<root>")
                value = value.replace(day, "<day>")
            return repr(value)

        return sorted(
            tuple(sorted((k, masked(v)) for k, v in r.items() if k not in VOLATILE)) for r in self.rows(table)
        )

    def ledger(self, day: str | None = None) -> list[dict]:
        """The ledger's rows, `path` and `duplicate_of` as URIs under the landing zone (the table stores them relative)."""
        from netflix_assets.bronze.ledger import from_ledger_path

        root = self.landing.root_uri()
        return [
            {**r, "path": from_ledger_path(r["path"], root),
             "duplicate_of": r["duplicate_of"] and from_ledger_path(r["duplicate_of"], root)}
            for r in self.rows("bronze/_ingested_files", day)
        ]


def bronze_titles_lake(root: Path, lookup_url: str) -> tuple[Lakehouse, str]:
    """A lake whose today's partition holds bronze/netflix_titles of the bundled tutorial file
    (the input of the remote silver steps of the Databricks tests)."""

    day = today_iso()
    lake = Lakehouse.create(root, lookup_url)
    lake.land(TUTORIAL_DIR / "netflix_titles.csv", "netflix_titles.csv")
    result = lake.run(day, asset_selection=[dg.AssetKey(["bronze", "netflix_titles"]), dg.AssetKey(["quarantine", "bronze_netflix_titles"])])
    assert result.success
    return lake, day


def tutorial_pairs(file_name: str) -> set[tuple[str, str]]:
    """Distinct (show_id, value) pairs of a bundled lookup file, computed with the csv module."""
    with open(TUTORIAL_DIR / file_name, newline="", encoding="utf-8-sig") as handle:
        reader = csv.reader(handle)
        next(reader)
        return {(show_id.strip(), value.strip()) for value, show_id in reader}


def check_results(result: dg.ExecuteInProcessResult) -> dict[str, bool]:
    return {
        f"{e.event_specific_data.asset_key.to_user_string()}:{e.event_specific_data.check_name}": e.event_specific_data.passed
        for e in result.all_events
        if e.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION
    }


def materialized(result: dg.ExecuteInProcessResult) -> dict[str, dict]:
    return {
        e.event_specific_data.materialization.asset_key.to_user_string(): e.event_specific_data.materialization.metadata
        for e in result.get_asset_materialization_events()
    }


# Warnings the bundled data raises on purpose: the lookup files name the two broken
# titles, which never reach dim_title (the integrity check must report them).
KNOWN_WARNINGS = {
    f"gold/{bridge}:show_id_in_dim_title" for bridge in ("bridge_title_person", "bridge_title_country", "bridge_title_genre")
}


def unexpected_failures(result: dg.ExecuteInProcessResult) -> list[str]:
    return sorted(name for name, passed in check_results(result).items() if not passed and name not in KNOWN_WARNINGS)
