"""The code location: every domain module's definitions + the deployment's resources."""

import dagster as dg

from . import jobs, later_days
from .bronze import archive as bronze_archive
from .bronze import assets as bronze
from .bronze import sensors as bronze_sensors
from .deployments import executor_for, resources_for
from .gold import assets as gold
from .lib.lineage import declared_graph, set_graph
from .serving.assets import build_sql_catalog
from .silver import assets as silver


def build_definitions(resources: dict | None = None) -> dg.Definitions:
    tables = (bronze.defs, silver.defs, gold.defs)
    keys = [key for d in tables for a in d.assets or () for key in getattr(a, "keys", ())]
    set_graph(declared_graph(a for d in tables for a in d.assets or ()))
    catalog = build_sql_catalog(keys)
    return dg.Definitions.merge(
        *tables,
        dg.Definitions(assets=[catalog]),
        later_days.build([*(a for d in tables for a in d.assets or ()), catalog]),
        bronze_sensors.defs,
        bronze_archive.defs,
        jobs.defs,
        dg.Definitions(resources=resources if resources is not None else resources_for(), executor=executor_for()),
    )


defs = build_definitions()


def build_lakehouse_job() -> dg.JobDefinition:
    """`lakehouse_job` with the resources of `NETFLIX_DEPLOYMENT`, built on each call: the
    target of `dg.reconstructable` for `dg.execute_job` from Python (the Databricks step
    launcher ships a step by such a reference and rebuilds the job on the cluster)."""
    return build_definitions().resolve_job_def("lakehouse_job")
