"""Column lineage without Dagster+: the declared lineage followed from a KPI column back to the
bronze fields and raw files (`reporting/lineage.py`), as the report's page and the gold tables'
pictures draw it. No Spark: the graph is the code location's declarations."""

import re

import pytest

from netflix_assets.lib.lineage import declared_graph
from netflix_assets.reporting import lineage


@pytest.fixture(scope="module")
def graph():
    from netflix_assets.definitions import build_definitions

    return declared_graph(build_definitions().assets)


def test_kpi_top_countries_titles_reaches_the_countries_titles_and_identity_bronze_fields(graph):
    reached = lineage.reaches(graph, "gold/kpi_top_countries", "titles")
    bronze = {node for node in reached if node[0].startswith("bronze/")}
    # show_id from the countries lookup and from the Kaggle titles' country list; type from the titles;
    # and what decides which titles are one (title_key): the titles' evidence, the credits, the ingest order.
    identity = {("bronze/netflix_titles", c) for c in ("title", "release_year", "description", "_source_format",
                                                       "_ingested_at", "_source_file", "_source_line", "cast", "director")}
    credits = {(f"bronze/netflix_{t}", c) for t, c in (("cast", "cast"), ("cast", "show_id"), ("directors", "director"),
                                                      ("directors", "show_id"))}
    assert bronze == {("bronze/netflix_countries", "show_id"), ("bronze/netflix_titles", "show_id"),
                      ("bronze/netflix_titles", "type")} | identity | credits
    assert {t for t, _ in reached if t.startswith("raw/")} == {"raw/netflix_countries", "raw/netflix_titles",
                                                                "raw/netflix_cast", "raw/netflix_directors"}
    # Through the model, not around it.
    assert {("gold/bridge_title_country", "show_id"), ("gold/bridge_title_country", "title_key"),
            ("gold/title_source_ids", "title_key"), ("gold/fact_title_added", "type"),
            ("silver/netflix_countries", "show_id")} <= reached


def test_every_gold_column_ends_at_a_raw_field_or_a_value_the_pipeline_sets(graph):
    """A trace that stops short of the raw files (a column declared without its sources) fails here."""
    constants = {("gold/netflix_titles", "newflag"), ("gold/bridge_title_person", "role")}
    for table in (t for t in graph if t.startswith("gold/")):
        for column in graph[table]:
            for node in lineage.reaches(graph, table, column) | {(table, column)}:
                if graph.get(node[0], {}).get(node[1]) or node[0].startswith("raw/") or node in constants:
                    continue
                # Bronze's lineage columns are set when a file is read: its name, line, format, run, day.
                assert node[0].startswith("bronze/") and (node[1].startswith("_") or node[1] == "ingest_date"), (table, column, node)


def test_the_picture_draws_every_traced_column_and_edge(graph):
    picture = lineage.svg(graph, "gold/kpi_top_countries")
    edges = lineage.trace(graph, "gold/kpi_top_countries")
    assert picture.count("<path ") == len(edges)
    for table in {t for edge in edges for t, _ in edge}:
        assert f">{table}</text>" in picture
    assert lineage.markdown(graph, "gold/kpi_top_countries").startswith("![column lineage of gold/kpi_top_countries](data:image/svg+xml;base64,")


def test_the_page_links_each_column_to_its_sources_down_to_the_raw_file(graph):
    html = lineage.page(graph, ["gold/kpi_top_countries"])
    ids = set(re.findall(r'id="([^"]+)"', html))
    links = set(re.findall(r'href="#([^"]+)"', html))
    assert links <= ids  # every link lands on a row of the page
    # Follow the first link from the KPI down until a raw column: KPI -> ... -> bronze -> raw.
    path, node = [], "gold/kpi_top_countries.titles"
    while node:
        path.append(node)
        row = re.search(rf'<tr id="{re.escape(node)}">(.*?)</tr>', html).group(1)
        found = re.findall(r'href="#([^"]+)"', row)
        node = found[0] if found else None
    assert path[0].startswith("gold/kpi") and any(p.startswith("bronze/") for p in path) and path[-1].startswith("raw/")
    assert "raw/netflix_titles/**/*.csv" in html and "raw/api/netflix_countries/" in html
