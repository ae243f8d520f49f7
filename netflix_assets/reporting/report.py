"""`make report`: a static HTML dashboard of the latest gold partition (the Power BI
stand-in). Reads the KPI tables with delta-rs (no Spark), draws the charts as
inline SVG: one self-contained file that works offline (no CDN, no script).
Beside it, `lineage.html`: every gold column followed back to the bronze fields and
raw files it comes from (`reporting/lineage.py`), linked from the dashboard.

    python -m netflix_assets.reporting.report [--lake DIR] [--out FILE]
"""

from __future__ import annotations

import argparse
import datetime as dt
import html
import sys
from pathlib import Path
from typing import Optional

from .. import settings
from ..resources.lake import DEFAULT_LAKE_URI, PROJECT_DIR, normalize_root
from .charts import ADDED, KPI_CHARTS, svg

DEFAULT_OUT = PROJECT_DIR / "report" / "netflix_report.html"
NOTE = (
    f"Titles are counted when added: {ADDED}. The catalogue export ends on its last date_added, so "
    "the last month and year drawn may be partial (their points are hollow)."
)
SECTIONS = [
    ("kpi_titles_added_by_month", "Titles added per month, by type"),
    ("kpi_top_countries", "Top countries"),
    ("kpi_genre_by_year", "Genre trends"),
    ("kpi_rating_mix", "Rating mix (share within each type)"),
    ("kpi_top_people", "Most frequent directors and cast"),
    ("kpi_movie_minutes_by_decade", "Movie minutes by release decade"),
]
STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2rem auto; max-width: 1100px; color: #221f1f; }
h1 { color: #e50914; margin-bottom: 0.2rem; }
.meta { color: #666; margin-bottom: 1.5rem; }
.tiles { display: flex; gap: 1rem; margin-bottom: 1.5rem; }
.tile { background: #f5f5f1; border-radius: 8px; padding: 0.8rem 1.2rem; min-width: 9rem; }
.tile b { display: block; font-size: 1.6rem; }
section { border-top: 1px solid #ddd; padding: 1rem 0; }
section svg { width: 100%; height: auto; }
.lineage { overflow-x: auto; }
.lineage svg { width: auto; max-width: none; }
table { border-collapse: collapse; font-size: 0.85rem; margin-top: 0.6rem; }
td, th { border-bottom: 1px solid #eee; padding: 0.2rem 0.6rem; text-align: left; vertical-align: top; }
tr:target { background: #fff3c4; }
"""
LINEAGE_PAGE = "lineage.html"


class ReportError(RuntimeError):
    pass


def _table(lake_root: str, table: str):
    from deltalake import DeltaTable
    from deltalake.exceptions import TableNotFoundError

    try:
        return DeltaTable(f"{lake_root}/gold/{table}")
    except TableNotFoundError as err:
        raise ReportError(f"gold/{table} not found under {lake_root}: run `make demo` first") from err


def latest_day(lake_root: str, table: str) -> str:
    """The table's latest partition (delta-rs: the log's partition values, no data read)."""
    days = [str(p["ingest_date"]) for p in _table(lake_root, table).partitions()]
    if not days:
        raise ReportError(f"gold/{table} is empty: nothing to report")
    return max(days)


def read_partition(lake_root: str, table: str, day: str):
    """The rows of the table's partition `day` as pandas (that partition alone is read)."""
    on_day = [("ingest_date", "=", dt.date.fromisoformat(day))]
    return _table(lake_root, table).to_pandas(filters=on_day).drop(columns=["ingest_date"])


def section_note(table: str, rows: int, day: str) -> str:
    """What a section says under its chart. A KPI without rows for the fact's day may be one a
    run has not committed yet, or whose step failed: said, rather than drawn empty silently."""
    if rows:
        return f"gold.{table}: {rows} rows"
    return f"gold.{table}: no rows for {day} (a run may still be writing it, or its step failed: see the runs)"


def build_html(lake_root: str) -> str:
    day = latest_day(lake_root, "fact_title_added")
    fact = read_partition(lake_root, "fact_title_added", day)
    counts = fact["type"].value_counts().to_dict()
    tiles = [("titles", len(fact)), ("movies", counts.get("Movie", 0)), ("TV shows", counts.get("TV Show", 0))]
    sections = []
    for table, title in SECTIONS:
        rows = read_partition(lake_root, table, day)
        sections.append(
            f'<section id="{table}"><h2>{html.escape(title)}</h2>{svg(KPI_CHARTS[table](rows))}'
            f'<p class="meta">{html.escape(section_note(table, len(rows), day))}</p></section>'
        )
    tile_html = "".join(f'<div class="tile"><b>{value:,}</b>{label}</div>' for label, value in tiles)
    generated = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        f"<title>Netflix catalog as of {day}</title><style>{STYLE}</style></head><body>"
        f"<h1>Netflix catalog</h1><div class=meta>Snapshot as of ingest_date {day} · lake {html.escape(lake_root)}"
        f" · generated {generated} · <a href=\"{LINEAGE_PAGE}\">column lineage</a></div><p class=meta>{html.escape(NOTE)}</p><div class=tiles>{tile_html}</div>{''.join(sections)}</body></html>"
    )


def lineage_html(dashboard: str = DEFAULT_OUT.name) -> str:
    """The lineage page: the code location's declared column lineage (no lake read)."""
    from ..definitions import build_definitions
    from ..deployments import local_resources
    from ..lib.lineage import declared_graph
    from .lineage import page

    graph = declared_graph(build_definitions(local_resources()).assets or ())
    gold = sorted(t for t in graph if t.startswith("gold/"))
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8><title>Netflix lakehouse: column lineage</title>"
        f"<style>{STYLE} body {{ max-width: 1700px; }}</style></head><body><h1>Column lineage</h1><div class=meta>Each gold column, the columns it is "
        "computed from (links), the bronze fields and the raw files it comes from, as the assets declare it "
        f"(<code>dagster/column_lineage</code>). <a href=\"{html.escape(dashboard)}\">back to the dashboard</a></div>"
        f"{page(graph, gold)}</body></html>"
    )


def write_report(lake_root: str, out: Path) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(build_html(lake_root), encoding="utf-8")
    (out.parent / LINEAGE_PAGE).write_text(lineage_html(out.name), encoding="utf-8")
    return out


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lake", default=settings.get("NETFLIX_LAKE_URI", DEFAULT_LAKE_URI))
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    try:
        path = write_report(normalize_root(args.lake), args.out)
    except ReportError as err:
        print(f"report: {err}", file=sys.stderr)
        return 1
    print(f"report written: {path} (open it in a browser; it works offline)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
