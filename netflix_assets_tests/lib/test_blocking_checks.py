"""A failing blocking check stops the assets downstream of it."""


import dagster as dg

from netflix_assets.transforms import silver as silver_transforms

from netflix_assets_tests.conftest import TUTORIAL_DIR, today_iso
from netflix_assets_tests.lakehouse import Lakehouse, check_results, materialized

TITLES_CHAIN = [
    dg.AssetKey(k)
    for k in (
        ["bronze", "netflix_titles"], ["quarantine", "bronze_netflix_titles"],
        ["silver", "netflix_titles"], ["quarantine", "netflix_titles"],
        ["gold", "netflix_titles"], ["quarantine", "gold_netflix_titles"],
    )
]


def test_duplicate_show_ids_in_silver_block_gold(spark, lookup_server, tmp_path, monkeypatch):
    real = silver_transforms.silver_titles
    # A regression that lets duplicates through silver: the blocking key check must catch it.
    monkeypatch.setattr(silver_transforms, "silver_titles", lambda classified: real(classified).unionByName(real(classified).limit(3)))
    lake = Lakehouse.create(tmp_path / "lake", lookup_server)
    lake.land(TUTORIAL_DIR / "netflix_titles.csv", "netflix_titles.csv")
    result = lake.run(today_iso(), asset_selection=TITLES_CHAIN)

    checks = check_results(result)
    assert checks["silver/netflix_titles:show_id_not_null_unique"] is False
    mats = materialized(result)
    assert "silver/netflix_titles" in mats
    assert "gold/netflix_titles" not in mats
    assert not (tmp_path / "lake" / "gold" / "netflix_titles").exists()


def test_a_failing_blocking_gold_check_stops_the_kpis(spark, lookup_server, tmp_path, monkeypatch):
    from netflix_assets.transforms import dimensional

    real = dimensional.fact_title_added
    # A regression that duplicates fact rows: the fact's blocking key check must stop the KPIs on it.
    monkeypatch.setattr(dimensional, "fact_title_added",
                        lambda titles, ids: real(titles, ids).unionByName(real(titles, ids).limit(2)))
    lake = Lakehouse.create(tmp_path / "lake", lookup_server)
    lake.land(TUTORIAL_DIR / "netflix_titles.csv", "netflix_titles.csv")
    kpis = [dg.AssetKey(["gold", t]) for t in ("kpi_titles_added_by_month", "kpi_movie_minutes_by_decade")]
    # The fact and everything it reads, each with its multi-asset's other outputs (the quarantines).
    upstream = dg.AssetSelection.assets(dg.AssetKey(["gold", "fact_title_added"])).upstream()
    keys = upstream.resolve(lake.defs.resolve_asset_graph())
    chain = sorted({k for key in keys for k in lake.defs.get_assets_def(key).keys}) + kpis
    result = lake.run(today_iso(), asset_selection=chain)

    checks = check_results(result)
    assert checks["gold/fact_title_added:title_key_not_null_unique"] is False
    mats = materialized(result)
    assert "gold/fact_title_added" in mats
    assert "gold/kpi_titles_added_by_month" not in mats and "gold/kpi_movie_minutes_by_decade" not in mats
    assert not (tmp_path / "lake" / "gold" / "kpi_titles_added_by_month").exists()
