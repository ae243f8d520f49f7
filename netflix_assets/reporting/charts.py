"""One chart per KPI table, drawn with matplotlib from the KPI's rows (a pandas
DataFrame: KPI tables are small by construction). The same figure is embedded
as a PNG in the materialization metadata and as inline SVG in the report."""

from __future__ import annotations

import base64
import io
from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

TYPE_COLORS = {"Movie": "#e50914", "TV Show": "#221f1f"}
TOP_N = 10


def _figure(height: float = 3.2, ncols: int = 1) -> tuple["Figure", list]:
    from matplotlib.figure import Figure  # no pyplot: no global state, no GUI backend

    fig = Figure(figsize=(7.5, height), dpi=100, layout="constrained")
    axes = fig.subplots(1, ncols, squeeze=False)[0]
    for ax in axes:
        ax.spines[["top", "right"]].set_visible(False)
        ax.grid(axis="y", alpha=0.3)
    return fig, list(axes)


ADDED = "added = date_added, the day Netflix added the title to its catalogue (not its release)"


def _partial(ax, last: object, unit: str) -> None:
    """The snapshot's last period holds only the days up to its last date_added: say so on the
    chart (its points are drawn hollow), rather than let a drop read as a trend."""
    ax.annotate(
        f"{last}: the data ends in this {unit}, which may be partial (hollow points)\n{ADDED}",
        xy=(0, -0.02), xycoords="axes fraction", ha="left", va="top", fontsize=7, color="#555",
        annotation_clip=False,
    )


def _last_hollow(ax, x, y, color) -> None:
    ax.plot(x.iloc[-1:], y.iloc[-1:], marker="o", markersize=5, markerfacecolor="white", color=color, linestyle="none")


def titles_added_by_month(df: "pd.DataFrame") -> "Figure":
    fig, (ax,) = _figure(3.6)
    last = df["month"].max()
    for kind, rows in df.sort_values("month").groupby("type"):
        ax.plot(rows["month"], rows["titles"], label=kind, color=TYPE_COLORS.get(kind), linewidth=1.4)
        rows = rows[rows["month"] == last]
        _last_hollow(ax, rows["month"], rows["titles"], TYPE_COLORS.get(kind))
    ax.set_title("Titles added per month")
    ax.set_ylabel("titles")
    ax.legend(frameon=False)
    _partial(ax, str(last)[:7], "month")
    return fig


def top_countries(df: "pd.DataFrame") -> "Figure":
    fig, (ax,) = _figure(3.6)
    top = df.sort_values(["rank", "country"]).head(TOP_N).iloc[::-1]
    ax.barh(top["country"], top["movies"], color=TYPE_COLORS["Movie"], label="Movie")
    ax.barh(top["country"], top["tv_shows"], left=top["movies"], color=TYPE_COLORS["TV Show"], label="TV Show")
    ax.set_title(f"Top {TOP_N} countries by titles")
    ax.grid(axis="x", alpha=0.3)
    ax.legend(frameon=False, loc="lower right")
    return fig


def genre_by_year(df: "pd.DataFrame") -> "Figure":
    fig, (ax,) = _figure(3.6)
    leaders = df.groupby("genre")["titles"].sum().nlargest(6).index
    last = df["year_added"].max()
    for genre in leaders:
        rows = df[df["genre"] == genre].sort_values("year_added")
        (line,) = ax.plot(rows["year_added"], rows["titles"], marker="o", markersize=3, label=genre)
        rows = rows[rows["year_added"] == last]
        _last_hollow(ax, rows["year_added"], rows["titles"], line.get_color())
    ax.set_title("Genre trends: titles added per year (6 largest genres)")
    ax.legend(frameon=False, fontsize=7, ncols=2)
    _partial(ax, last, "year")
    return fig


def rating_mix(df: "pd.DataFrame") -> "Figure":
    fig, axes = _figure(3.4, ncols=2)
    for ax, kind in zip(axes, ("Movie", "TV Show")):
        rows = df[df["type"] == kind].fillna({"rating": "(none)"}).sort_values("share", ascending=False)
        ax.bar(rows["rating"], rows["share"], color=TYPE_COLORS[kind])
        ax.set_title(f"Rating mix: {kind}")
        ax.tick_params(axis="x", labelrotation=60, labelsize=7)
        ax.yaxis.set_major_formatter(lambda v, _: f"{v:.0%}")
    return fig


def top_people(df: "pd.DataFrame") -> "Figure":
    fig, axes = _figure(3.8, ncols=2)
    for ax, role in zip(axes, ("director", "cast")):
        top = df[df["role"] == role].sort_values(["rank", "name"]).head(TOP_N).iloc[::-1]
        ax.barh(top["name"], top["titles"], color="#b20710")
        ax.set_title(f"Top {role}")
        ax.tick_params(axis="y", labelsize=7)
        ax.grid(axis="x", alpha=0.3)
    return fig


def movie_minutes_by_decade(df: "pd.DataFrame") -> "Figure":
    fig, (ax,) = _figure()
    rows = df.sort_values("release_decade")
    labels = [f"{int(d)}s" for d in rows["release_decade"]]
    ax.bar(labels, rows["median_minutes"], color="#e50914", label="median")
    ax.plot(labels, rows["p90_minutes"], color="#221f1f", marker="o", label="90th percentile")
    ax.plot(labels, rows["avg_minutes"], color="#888", linestyle="--", label="average")
    ax.set_title("Movie minutes by release decade")
    ax.set_ylabel("minutes")
    ax.legend(frameon=False)
    return fig


KPI_CHARTS: dict[str, Callable[["pd.DataFrame"], "Figure"]] = {
    "kpi_titles_added_by_month": titles_added_by_month,
    "kpi_top_countries": top_countries,
    "kpi_genre_by_year": genre_by_year,
    "kpi_rating_mix": rating_mix,
    "kpi_top_people": top_people,
    "kpi_movie_minutes_by_decade": movie_minutes_by_decade,
}


def png_base64(fig: "Figure") -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return base64.b64encode(buffer.getvalue()).decode()


def svg(fig: "Figure") -> str:
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", metadata={"Date": None})  # same data, same file
    text = buffer.getvalue()
    return text[text.index("<svg") :]  # drop the XML prolog: the SVG is inlined in HTML


def chart_markdown(table: str, df: "pd.DataFrame") -> str:
    """Markdown the Dagster UI renders as an image (a PNG data URI)."""
    return f"![{table}](data:image/png;base64,{png_base64(KPI_CHARTS[table](df))})"
