"""Column lineage anyone can browse: the open-source Dagster UI shows declared column lineage only
as a raw metadata entry (its lineage view is a Dagster+ feature), so it is drawn here.

From the declared graph (`lib/lineage.py`: {"layer/table": {column: [(table, column)]}}), `trace`
follows a table's columns back to the raw files; `svg` draws that trace (hand-written SVG: a few
milliseconds, so every gold materialization carries its picture), and `page` is the report's
lineage page, where each column links to the columns it is computed from, down to the bronze
field and the file it was read from. No Dagster, no Spark.
"""

from __future__ import annotations

import base64
import html
from collections import defaultdict
from typing import Iterable, Optional

Graph = dict[str, dict[str, list[tuple[str, str]]]]
Node = tuple[str, str]  # (table, column)

LAYER_COLORS = {"raw": "#8c8c8c", "bronze": "#a0522d", "silver": "#7f8c8d", "gold": "#c9a227", "quarantine": "#b03a2e"}


def source_files(table: str) -> str:
    """Where a raw table's rows are read from, relative to the lake root."""
    dataset = table.split("/", 1)[1]
    if dataset == "netflix_titles":
        return "raw/netflix_titles/**/*.csv (the landing zone: each titles file once)"
    return f"raw/api/{dataset}/<ingest_date>/... (byte-for-byte copies of the HTTP pulls)"


def trace(graph: Graph, table: str, columns: Optional[Iterable[str]] = None) -> list[tuple[Node, Node]]:
    """Every (upstream, downstream) column edge that `table`'s columns (or `columns`) derive from,
    transitively: the edges end at columns of tables that declare no lineage (the raw sources)."""
    todo = [(table, c) for c in (columns if columns is not None else graph.get(table, {}))]
    seen, edges = set(todo), []
    while todo:
        node = todo.pop()
        for source in graph.get(node[0], {}).get(node[1], []):
            edges.append((source, node))
            if source not in seen:
                seen.add(source)
                todo.append(source)
    return sorted(set(edges))


def reaches(graph: Graph, table: str, column: str) -> set[Node]:
    return {source for source, _ in trace(graph, table, [column])}


def _depths(table: str, edges: list[tuple[Node, Node]]) -> dict[str, int]:
    """Each table's longest distance (in tables) from `table`: the picture's column, right to left."""
    depth = {table: 0}
    changed = True
    while changed:
        changed = False
        for (src, _), (dst, _) in edges:
            if dst in depth and src != dst and depth.get(src, -1) < depth[dst] + 1:
                depth[src] = depth[dst] + 1
                changed = True
    return depth


BOX_W, ROW_H, HEAD_H, GAP_X, GAP_Y, PAD = 165, 16, 22, 34, 14, 10
UI_WIDTH = 1050  # px: the Dagster UI's Markdown dialog shows about this much without scrolling


def svg(graph: Graph, table: str, max_width: Optional[float] = None) -> str:
    """`table`'s columns and every column they come from, one box per table, sources on the left
    (drawn at most `max_width` pixels wide: scaled down, never up)."""
    edges = trace(graph, table)
    nodes: dict[str, set[str]] = defaultdict(set)
    nodes[table].update(graph.get(table, {}))
    for src, dst in edges:
        nodes[src[0]].add(src[1])
        nodes[dst[0]].add(dst[1])
    depth = _depths(table, edges)
    levels = max(depth.values())
    by_level: dict[int, list[str]] = defaultdict(list)
    for name in sorted(nodes, key=lambda n: (n.split("/")[0] != "raw", n)):
        by_level[depth[name]].append(name)
    # Wide enough for the longest table name in 10 px bold sans-serif (~6.3 px a character).
    box_w = max(BOX_W, *(6.3 * len(name) + 12 for name in nodes))
    position: dict[Node, tuple[float, float, float]] = {}  # (x_left, x_right, y)
    parts, height = [], 0.0
    for level, tables in by_level.items():
        x = PAD + (levels - level) * (box_w + GAP_X)
        y = PAD
        for name in tables:
            cols = sorted(nodes[name], key=lambda c: list(graph.get(name, {})).index(c) if c in graph.get(name, {}) else 999)
            h = HEAD_H + ROW_H * len(cols)
            color = LAYER_COLORS.get(name.split("/")[0], "#555")
            parts.append(f'<g><title>{html.escape(name)}</title><rect x="{x}" y="{y}" width="{box_w}" height="{h}" rx="5" '
                         f'fill="#fff" stroke="{color}" stroke-width="1.5"/>'
                         f'<rect x="{x}" y="{y}" width="{box_w}" height="{HEAD_H}" rx="5" fill="{color}"/>'
                         f'<text x="{x + 6}" y="{y + 15}" fill="#fff" font-weight="bold" font-size="10">{html.escape(name)}</text></g>')
            for i, col in enumerate(cols):
                cy = y + HEAD_H + ROW_H * i + ROW_H / 2
                position[(name, col)] = (x, x + box_w, cy)
                parts.append(f'<text x="{x + 8}" y="{cy + 4}">{html.escape(col)}</text>')
            y += h + GAP_Y
        height = max(height, y)
    lines = []
    for src, dst in edges:
        (_, x1, y1), (x2, _, y2) = position[src], position[dst]
        mid = (x1 + x2) / 2
        lines.append(f'<path d="M{x1},{y1} C{mid},{y1} {mid},{y2} {x2},{y2}" fill="none" stroke="#888" stroke-opacity="0.7"/>')
    width = PAD * 2 + (levels + 1) * box_w + levels * GAP_X
    scale = min(1.0, max_width / width) if max_width else 1.0
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width * scale:.0f}" height="{(height + PAD) * scale:.0f}" '
            f'viewBox="0 0 {width} {height + PAD}" '
            f'font-family="sans-serif" font-size="11"><title>Column lineage of {html.escape(table)}</title>'
            f'<rect width="100%" height="100%" fill="#fff"/>{"".join(lines)}{"".join(parts)}</svg>')


def markdown(graph: Graph, table: str) -> str:
    """The picture as markdown the Dagster UI renders (an SVG data URI), with how to read it."""
    data = base64.b64encode(svg(graph, table, max_width=UI_WIDTH).encode()).decode()
    return (f"![column lineage of {table}](data:image/svg+xml;base64,{data})\n\n"
            "Each column of this table (right) and the columns it is computed from, back to the raw files (left). "
            "`make report` writes the same as a page where each column links to its sources.")


def anchor(table: str, column: Optional[str] = None) -> str:
    return f"{table}.{column}" if column else table


def page(graph: Graph, tables: Iterable[str]) -> str:
    """HTML sections: each of `tables` (gold) with its picture, then every table they derive from,
    each column linked to its direct sources and listing the bronze fields and raw files it reaches."""
    tables = list(tables)
    shown, order = set(), []
    for name in tables:
        for (src, _), (dst, _) in trace(graph, name):
            for t in (dst, src):
                if t not in shown:
                    shown.add(t)
                    order.append(t)
        if name not in shown:
            shown.add(name)
            order.append(name)
    layer_rank = {"gold": 0, "silver": 1, "bronze": 2, "raw": 3}
    order.sort(key=lambda t: (layer_rank.get(t.split("/")[0], 9), t not in tables, t))
    referenced: dict[str, set[str]] = defaultdict(set)  # columns other tables of the page link to
    for name in order:
        for deps in graph.get(name, {}).values():
            for source, column in deps:
                referenced[source].add(column)
    sections = []
    for name in order:
        picture = f'<div class="lineage">{svg(graph, name)}</div>' if name in tables else ""
        rows = []
        declared = list(graph.get(name, {}))
        columns = declared + sorted(referenced[name] - set(declared))
        for col in columns:
            direct = graph.get(name, {}).get(col, [])
            links = ", ".join(f'<a href="#{html.escape(anchor(s, c))}">{html.escape(s)}.{html.escape(c)}</a>' for s, c in direct)
            far = reaches(graph, name, col)
            bronze = sorted(f"{s}.{c}" for s, c in far if s.startswith("bronze/"))
            raw = sorted({s for s, _ in far if s.startswith("raw/")} | ({name} if name.startswith("raw/") else set()))
            files = "<br>".join(html.escape(source_files(r)) for r in raw)
            rows.append(f'<tr id="{html.escape(anchor(name, col))}"><td><b>{html.escape(col)}</b></td><td>{links or "—"}</td>'
                        f'<td>{html.escape(", ".join(bronze)) or "—"}</td><td>{files}</td></tr>')
        sections.append(f'<section id="{html.escape(name)}"><h2>{html.escape(name)}</h2>{picture}<table><thead><tr><th>column</th>'
                        f'<th>computed from</th><th>bronze fields reached</th><th>raw files</th></tr></thead>'
                        f'<tbody>{"".join(rows)}</tbody></table></section>')
    return "".join(sections)
