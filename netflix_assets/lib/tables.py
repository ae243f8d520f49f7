"""Delta tables of the lake as Dagster sees them: column schemas and table names for the
materialization metadata, and the partition of a run. The Delta I/O itself is in `lib/delta.py`."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any, Mapping, Optional

import dagster as dg

from .columns import describe

if TYPE_CHECKING:
    from pyspark.sql.types import StructType


def column_schema(schema: StructType, descriptions: Optional[Mapping[str, str]] = None) -> dg.TableSchema:
    descriptions = descriptions or {}
    return dg.TableSchema(
        columns=[
            dg.TableColumn(
                name=field.name,
                type=field.dataType.simpleString(),
                description=descriptions.get(field.name),
                constraints=dg.TableColumnConstraints(nullable=field.nullable),
            )
            for field in schema.fields
        ]
    )


def table_metadata(key: dg.AssetKey, schema: StructType, uri: str) -> dict[str, Any]:
    return {
        "dagster/column_schema": column_schema(schema, describe(key.to_user_string(), schema.names)),
        "dagster/table_name": ".".join(key.path),
        "dagster/uri": dg.MetadataValue.path(uri),
    }


def partition_date(context: dg.AssetExecutionContext | dg.AssetCheckExecutionContext) -> dt.date:
    return dt.date.fromisoformat(context.partition_key)
