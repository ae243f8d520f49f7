"""Column-level lineage as Dagster metadata (`dagster/column_lineage`).

Declared next to each asset as {column: [(upstream asset key, upstream column), ...]};
columns not named are passed through from `passthrough` (same name).
"""

from typing import Iterable, Mapping, Optional, Sequence

import dagster as dg

LINEAGE_KEY = "dagster/column_lineage"
Source = tuple[Sequence[str], str]


def column_lineage(
    derived: Mapping[str, Iterable[Source]],
    passthrough: Optional[Sequence[str]] = None,
    columns: Sequence[str] = (),
) -> dg.TableColumnLineage:
    """`derived`: column -> its upstream (key, column) pairs; `columns` listed here
    come unchanged from the asset `passthrough`."""
    deps = {column: [dg.TableColumnDep(dg.AssetKey(list(key)), name) for key, name in sources]
            for column, sources in derived.items()}
    for column in columns:
        deps.setdefault(column, [dg.TableColumnDep(dg.AssetKey(list(passthrough)), column)])
    return dg.TableColumnLineage(deps)


def same_columns(upstream: Sequence[str], columns: Sequence[str]) -> dg.TableColumnLineage:
    return column_lineage({}, upstream, columns)


def set_here(lineage: Optional[dg.TableColumnLineage], columns: Iterable[str],
             derived: Optional[Mapping[str, Iterable[Source]]] = None) -> dg.TableColumnLineage:
    """`lineage` (None: nothing yet) plus `derived` columns and `columns` that the step itself sets,
    no upstream column feeding them (a file's name and line as it is read, the day it is read on, a
    whole file's refusal): declared with no sources, as the lineage of a constant."""
    deps = dict(lineage.deps_by_column) if lineage is not None else {}
    for column, sources in (derived or {}).items():
        deps.setdefault(column, [dg.TableColumnDep(dg.AssetKey(list(key)), name) for key, name in sources])
    for column in columns:
        deps.setdefault(column, [])
    return dg.TableColumnLineage(deps)


# The code location's declared column lineage as plain data: {"layer/table": {column: [(table, column)]}}.
Graph = dict[str, dict[str, list[tuple[str, str]]]]
_GRAPH: Optional[Graph] = None


def declared_graph(assets: Iterable[object]) -> Graph:
    """The column lineage every asset of `assets` declares (`dagster/column_lineage`)."""
    graph: Graph = {}
    for asset in assets:
        for key, spec_metadata in getattr(asset, "metadata_by_key", {}).items():
            lineage = spec_metadata.get(LINEAGE_KEY)
            if lineage is not None:
                graph[key.to_user_string()] = {
                    column: [(d.asset_key.to_user_string(), d.column_name) for d in deps]
                    for column, deps in lineage.deps_by_column.items()
                }
    return graph


def set_graph(graph: Graph) -> None:
    """Set once when the code location's definitions are built (`definitions.py`): the Delta IO
    manager draws each gold table's lineage picture from the whole graph, which no single asset's
    output context holds."""
    global _GRAPH
    _GRAPH = graph


def graph() -> Optional[Graph]:
    return _GRAPH
