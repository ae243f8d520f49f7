"""The dimensional model and KPIs on the bundled tutorial data, checked against
figures computed here independently with the csv module (no Spark), plus the
offline report rendered by a real headless Chromium."""

import collections
import csv
import datetime as dt
import shutil
import statistics
import subprocess
from pathlib import Path

import pytest

from netflix_assets.reporting import report
from netflix_assets.transforms.formats import LOOKUPS

from netflix_assets_tests.conftest import TUTORIAL_DIR
from netflix_assets_tests.lakehouse import KNOWN_WARNINGS, check_results, materialized

MODEL = [
    "dim_title", "dim_title_history", "dim_person", "dim_country", "dim_genre", "dim_date", "bridge_title_person", "bridge_title_country",
    "bridge_title_genre", "fact_title_added",
]
KPIS = [
    "kpi_titles_added_by_month", "kpi_top_countries", "kpi_genre_by_year", "kpi_rating_mix", "kpi_top_people",
    "kpi_movie_minutes_by_decade",
]


def _rows(file_name: str) -> list[dict]:
    with open(TUTORIAL_DIR / file_name, newline="", encoding="utf-8-sig") as handle:
        return list(csv.DictReader(handle))


def _date(text: str):
    for fmt in ("%B %d, %Y", "%m/%d/%Y"):
        try:
            return dt.datetime.strptime(text.strip(), fmt).date()
        except ValueError:
            pass
    return None


@pytest.fixture(scope="module")
def expected():
    """The catalog as plain Python sees it: well-formed titles and lookup pairs."""
    titles = {}
    for row in _rows("netflix_titles.csv"):
        show_id = (row["show_id"] or "").strip()
        if show_id and row["type"].strip() in ("Movie", "TV Show"):
            titles[show_id] = row
    pairs = {}
    for lookup in LOOKUPS.values():
        column = lookup.source_column
        pairs[lookup.table.removeprefix("netflix_")] = {
            (r["show_id"].strip(), r[column].strip()) for r in _rows(lookup.file_name)
            if r["show_id"].strip() and r[column].strip()
        }
    return titles, pairs


@pytest.fixture(scope="module")
def built(tutorial_lake):
    """The session's shared tutorial lake (conftest.py): read only."""
    return tutorial_lake.lake, tutorial_lake.day, tutorial_lake.result


def gold(built, table):
    lake, day, _ = built
    return lake.rows(f"gold/{table}", day)


def test_every_model_table_and_kpi_materializes_with_lineage_and_chart(built):
    _, _, result = built
    assert result.success
    mats = materialized(result)
    for table in MODEL + KPIS:
        meta = mats[f"gold/{table}"]
        assert meta["dagster/row_count"].value > 0
        assert "dagster/column_lineage" in meta and "dagster/column_schema" in meta
    for table in KPIS:
        assert mats[f"gold/{table}"]["chart"].value.startswith(f"![{table}](data:image/png;base64,")
    lineage = mats["gold/fact_title_added"]["dagster/column_lineage"].value.deps_by_column
    assert {(d.asset_key.to_user_string(), d.column_name) for d in lineage["years_to_netflix"]} == {
        ("gold/netflix_titles", "date_added"), ("gold/netflix_titles", "release_year")
    }
    silver = mats["silver/netflix_titles"]["dagster/column_lineage"].value.deps_by_column
    assert ("bronze/netflix_titles", "title") in {(d.asset_key.to_user_string(), d.column_name) for d in silver["short_title"]}


def test_blocking_checks_pass_and_only_the_integrity_warning_fires(built):
    _, _, result = built
    failed = sorted(name for name, ok in check_results(result).items() if not ok)
    assert failed == sorted(KNOWN_WARNINGS)


def test_referential_integrity_warning_counts_the_orphans(built, expected):
    titles, pairs = expected
    _, _, result = built
    evaluations = {
        e.event_specific_data.asset_key.path[-1]: e.event_specific_data
        for e in result.all_events
        if e.event_type_value == "ASSET_CHECK_EVALUATION" and e.event_specific_data.check_name == "show_id_in_dim_title"
    }
    for bridge, sources in (("bridge_title_person", ("cast", "directors")), ("bridge_title_country", ("countries",)),
                            ("bridge_title_genre", ("category",))):
        orphans = {s for name in sources for s, _ in pairs[name]} - set(titles)
        assert orphans, "the real data has lookup rows of the broken titles"
        evaluation = evaluations[bridge]
        assert evaluation.severity.value == "WARN"
        assert evaluation.metadata["orphan_show_ids"].value == len(orphans)


def test_dim_title_is_the_catalog(built, expected):
    titles, _ = expected
    rows = gold(built, "dim_title")
    assert len(rows) == len(titles) == 6232
    assert {r["show_id"] for r in rows} == set(titles)


def test_genre_and_country_dimensions_hold_every_distinct_value(built, expected):
    _, pairs = expected
    assert len(gold(built, "dim_genre")) == len({v for _, v in pairs["category"]})
    assert len(gold(built, "dim_country")) == len({v for _, v in pairs["countries"]})
    assert len(gold(built, "dim_person")) == len({v for _, v in pairs["cast"] | pairs["directors"]})


def test_top_country_and_its_title_count(built, expected):
    titles, pairs = expected
    per_country = collections.Counter(country for show_id, country in pairs["countries"] if show_id in titles)
    (top, count), = per_country.most_common(1)
    first = [r for r in gold(built, "kpi_top_countries") if r["rank"] == 1]
    assert [(r["country"], r["titles"]) for r in first] == [(top, count)]
    assert first[0]["movies"] + first[0]["tv_shows"] == count


def test_monthly_additions_of_one_month(built, expected):
    titles, _ = expected
    added = collections.Counter(
        (d.replace(day=1), row["type"].strip()) for row in titles.values() if (d := _date(row["date_added"] or ""))
    )
    (month, kind), count = added.most_common(1)[0]
    kpi = {(r["month"], r["type"]): r["titles"] for r in gold(built, "kpi_titles_added_by_month")}
    assert kpi[(month, kind)] == count
    assert sum(kpi.values()) == sum(added.values())


def test_rating_shares_sum_to_one_per_type(built, expected):
    titles, _ = expected
    sums = collections.defaultdict(float)
    for row in gold(built, "kpi_rating_mix"):
        sums[row["type"]] += row["share"]
    assert set(sums) == {"Movie", "TV Show"}
    assert all(abs(s - 1) < 1e-9 for s in sums.values())
    movies = sum(1 for r in titles.values() if r["type"].strip() == "Movie")
    tv_ma = sum(1 for r in titles.values() if r["type"].strip() == "Movie" and r["rating"].strip() == "TV-MA")
    share = {(r["rating"], r["type"]): r["share"] for r in gold(built, "kpi_rating_mix")}[("TV-MA", "Movie")]
    assert share == pytest.approx(tv_ma / movies)


def test_top_director_and_people_ranked_per_role(built, expected):
    titles, pairs = expected
    directors = collections.Counter(name for show_id, name in pairs["directors"] if show_id in titles)
    best = max(directors.values())
    kpi = gold(built, "kpi_top_people")
    top = {r["name"] for r in kpi if r["role"] == "director" and r["rank"] == 1}
    assert top == {name for name, n in directors.items() if n == best}
    assert {r["role"] for r in kpi if r["rank"] == 1} == {"cast", "director"}


def test_ranked_kpi_charts_get_only_the_top_rows_they_draw(spark, built):
    from netflix_assets.gold.model import chart_rows
    from netflix_assets.reporting.charts import TOP_N

    lake, day, _ = built
    for name, label, within in (("kpi_top_people", "name", "role"), ("kpi_top_countries", "country", None)):
        kpi = spark.read.format("delta").load(str(lake.root / "gold" / name)).where(f"ingest_date = '{day}'")
        full = kpi.toPandas()
        groups = [full] if within is None else [g for _, g in full.groupby(within)]
        want = sorted(tuple(r) for g in groups for r in g.sort_values(["rank", label]).head(TOP_N).itertuples(index=False))
        got = chart_rows(name, kpi)
        assert len(full) > len(got) and sorted(tuple(r) for r in got.itertuples(index=False)) == want, name


def test_movie_minutes_of_one_decade(built, expected):
    titles, _ = expected
    minutes = [
        int(r["duration_minutes"]) for r in titles.values()
        if r["type"].strip() == "Movie" and (r["duration_minutes"] or "").strip().isdigit()
        and int(r["duration_minutes"]) > 0 and r["release_year"].strip()[:3] == "201"
    ]
    row = {r["release_decade"]: r for r in gold(built, "kpi_movie_minutes_by_decade")}[2010]
    assert row["movies"] == len(minutes)
    assert row["median_minutes"] == pytest.approx(statistics.median(minutes))
    assert row["avg_minutes"] == pytest.approx(round(statistics.fmean(minutes), 1))


def _screenshot(browser: str, page: Path, size: str, tmp_path: Path) -> Path:
    """A PNG of `page` in headless Chromium, offline (no background network, a fresh profile)."""
    shot = tmp_path / f"{page.stem}.png"
    subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}",
         "--hide-scrollbars", f"--window-size={size}", f"--screenshot={shot}", page.as_uri()],
        check=True, capture_output=True, timeout=120,
    )
    return shot


def test_report_renders_offline_in_headless_chromium(built, tmp_path):
    from PIL import Image

    lake, _, _ = built
    page = report.write_report(str(lake.root), tmp_path / "report.html")
    text = page.read_text()
    assert text.count("<svg") == len(report.SECTIONS)
    # Offline: nothing is fetched (XML namespace URIs in the SVG are names, not requests).
    for fetch in ('src="http', "src='http", 'href="http', "url(http", "<script", "<link", "@import"):
        assert fetch not in text, fetch
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    assert browser, "make test installs Debian's chromium"
    image = Image.open(_screenshot(browser, page, "1200,2400", tmp_path)).convert("RGB")
    colors = image.getcolors(maxcolors=1 << 20) or []
    non_white = sum(n for n, rgb in colors if rgb != (255, 255, 255))
    netflix_red = sum(n for n, (r, g, b) in colors if r > 180 and g < 60 and b < 60)
    assert non_white > 0.05 * image.width * image.height, "the page is blank"
    assert netflix_red > 2000, "the charts' bars are drawn"

    # The column lineage page beside it, linked from the dashboard: drawn, and offline too.
    lineage_page = page.parent / report.LINEAGE_PAGE
    assert f'href="{report.LINEAGE_PAGE}"' in text
    lineage_text = lineage_page.read_text()
    for fetch in ('src="http', 'href="http', "<script", "<link"):
        assert fetch not in lineage_text, fetch
    assert 'id="gold/kpi_top_countries.titles"' in lineage_text and 'id="raw/netflix_countries.show_id"' in lineage_text
    colors = Image.open(_screenshot(browser, lineage_page, "1700,1400", tmp_path)).convert("RGB").getcolors(maxcolors=1 << 20) or []
    gold_boxes = sum(n for n, rgb in colors if rgb == (0xC9, 0xA2, 0x27))
    bronze_boxes = sum(n for n, rgb in colors if rgb == (0xA0, 0x52, 0x2D))
    assert gold_boxes > 2000 and bronze_boxes > 2000, "the lineage pictures' gold and bronze boxes are drawn"
