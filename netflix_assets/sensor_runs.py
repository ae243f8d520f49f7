"""What the Dagster daemon does with the landing-zone sensor, in process: evaluate
ticks and launch their run requests. Used by `make demo` and the tests; under
`dagster dev` the daemon does this itself every 30 s."""

import logging
from typing import Any, Optional

import dagster as dg
from dagster._core.storage.tags import RUN_KEY_TAG

from . import step_threads

SENSOR_NAME = "landing_zone_sensor"


def tick(
    defs: dg.Definitions, instance: dg.DagsterInstance, cursor: Optional[str] = None, log_level: int = logging.INFO
) -> dg.SensorResult:
    """One evaluation of the sensor with the definitions' resources; its log lines below
    `log_level` are dropped (the daemon keeps them with the tick)."""
    sensor = defs.resolve_sensor_def(SENSOR_NAME)
    with dg.build_sensor_context(instance=instance, cursor=cursor, resources=defs.resources) as context:
        context.log.setLevel(log_level)
        return sensor(context)


def launch(
    defs: dg.Definitions, instance: dg.DagsterInstance, request: dg.RunRequest, run_config: Optional[dict[str, Any]] = None
) -> dg.ExecuteInProcessResult:
    """Execute one run request like the daemon would (tagged with its run_key), with the job's executor."""
    job = defs.resolve_job_def(request.job_name)
    config = dict(request.run_config or {})
    config.update(run_config or {})
    return step_threads.execute_in_process(
        job,
        run_config=config,
        partition_key=request.partition_key,
        tags={**request.tags, RUN_KEY_TAG: request.run_key},
        instance=instance,
        raise_on_error=False,
    )
