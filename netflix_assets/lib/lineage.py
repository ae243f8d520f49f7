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
