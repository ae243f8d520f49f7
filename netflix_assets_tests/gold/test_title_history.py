"""gold/dim_title_history across two partitions of a real lake: yesterday's file, then today's file
changing one title's rating, then a third file reverting it the same day. Yesterday's history is
rebuilt from the snapshots (the as-of input); today's runs are incremental (the sensor's tag): the
first advances yesterday's stored partition, the second rewinds today's and advances it again, which
reads and replaces the same Delta partition. Its checks pass after each run. The rule itself (a reversal, a title leaving,
two changes on one day) is tested on hand-made snapshots in `transforms/test_history_transforms.py`."""

import csv
import datetime as dt

import dagster as dg

from netflix_assets.lib import clock
from netflix_assets.lib.refresh import INCREMENTAL, REFRESH_TAG

from netflix_assets_tests.conftest import TUTORIAL_DIR, today_iso
from netflix_assets_tests.lakehouse import Lakehouse, check_results, materialized

TODAY = today_iso()
YESTERDAY = (dt.date.fromisoformat(TODAY) - dt.timedelta(days=1)).isoformat()


def _write(path, header, rows):
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=header)
        writer.writeheader()
        writer.writerows(rows)
    return path


def test_a_rating_changed_by_todays_file_closes_yesterdays_version(spark, lookup_server, tmp_path, monkeypatch):
    with open(TUTORIAL_DIR / "netflix_titles.csv", newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        header, rows = reader.fieldnames, [r for _, r in zip(range(4), reader)]
    changed = {**rows[0], "rating": "R" if rows[0]["rating"] != "R" else "PG"}
    lake = Lakehouse.create(tmp_path / "lake", lookup_server)
    # What the history needs (with the quarantine outputs the silver checks reconcile against), not
    # the bridges, the fact and the KPIs: half the steps of a whole run.
    needed = (dg.AssetSelection.assets(["gold", "dim_title_history"]).upstream()
              | dg.AssetSelection.key_prefixes(["quarantine"])).required_multi_asset_neighbors()
    selection = list(needed.resolve(lake.defs.resolve_asset_graph()))
    show_id = rows[0]["show_id"]

    def history_of(day, refresh, name, file_rows):
        """Land a file and run the day (`refresh`: the history's expected refresh and refresh_from);
        the history's versions of the changed title."""
        # Bronze claims new files for today's partition only: yesterday's run lands on a pinned yesterday.
        monkeypatch.setenv(clock.TODAY_ENV, day)
        lake.land(_write(tmp_path / name, header, file_rows), name)
        tags = {REFRESH_TAG: INCREMENTAL} if refresh[0] == INCREMENTAL else None
        result = lake.run(day, asset_selection=selection, tags=tags)
        assert result.success, day
        verdicts = {k: v for k, v in check_results(result).items() if k.startswith("gold/dim_title_history:")}
        assert len(verdicts) == 4 and all(verdicts.values()), (day, verdicts)
        metadata = materialized(result)["gold/dim_title_history"]
        assert (metadata["refresh"].value, getattr(metadata.get("refresh_from"), "value", None)) == refresh, day
        return sorted((str(r["valid_from"]), str(r["valid_to"]), r["is_current"], r["rating"])
                      for r in lake.rows("gold/dim_title_history", day) if r["show_id"] == show_id)

    history_of(YESTERDAY, ("full", None), "first.csv", rows)
    # Today's run advances yesterday's stored history with today's snapshot (the sensor's runs do).
    versions = history_of(TODAY, (INCREMENTAL, YESTERDAY), "second.csv", [changed, rows[1]])
    assert versions == [(YESTERDAY, TODAY, False, rows[0]["rating"]), (TODAY, "None", True, changed["rating"])]
    history = lake.rows("gold/dim_title_history", TODAY)
    # The others did not change: one version each, current since yesterday.
    others = {(r["show_id"], str(r["valid_from"]), r["is_current"]) for r in history if r["show_id"] != show_id}
    assert others == {(r["show_id"], YESTERDAY, True) for r in rows[1:]}
    # Yesterday's partition is the history as of yesterday: it never looks past its day.
    assert {(r["show_id"], r["valid_to"], r["is_current"]) for r in lake.rows("gold/dim_title_history", YESTERDAY)} == {
        (r["show_id"], None, True) for r in rows}
    # A later file of today reverts the rating: today's stored partition, rewound to yesterday and
    # advanced with today's new snapshot, holds no version of today (the day's final state is a version).
    assert history_of(TODAY, (INCREMENTAL, f"{TODAY} (rewound)"), "third.csv", [rows[0]]) == [
        (YESTERDAY, "None", True, rows[0]["rating"])]
