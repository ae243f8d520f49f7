"""Dagster definitions the Databricks emulator tests run on the emulated cluster.

The step launcher ships a step by reference: the remote process re-imports this
module (from the uploaded code zip) and calls a job factory below, so the
definitions must live in an importable module that needs nothing but dagster.
The launcher and the IO manager are configured through run config, which
travels with the step.
"""

import os
import sys

import dagster as dg

SECRET_ENV_VAR = "EMULATOR_TEST_SECRET"
JOB_NAME = "emulated_databricks_job"


@dg.asset(required_resource_keys={"pyspark_step_launcher"})
def remote_fingerprint(context: dg.AssetExecutionContext) -> dict:
    """Reports where it ran, so the test can tell the cluster from the test process."""
    context.log.info("running on the emulated cluster")
    print("stdout of the emulated driver")  # noqa: T201 - checked in the captured stdout
    # The launcher resource is rebuilt on the cluster too, from the same config.
    sdk_config = context.resources.pyspark_step_launcher.databricks_runner.client.workspace_client.config
    return {
        "launcher_auth": (sdk_config.auth_type, sdk_config.host),
        "pid": os.getpid(),
        "secret": os.environ.get(SECRET_ENV_VAR),
        "runtime_version": os.environ.get("DATABRICKS_RUNTIME_VERSION"),
        "argv": list(sys.argv),
        "module_file": __file__,
        "spark_loaded": "pyspark" in sys.modules,
    }


def _job(*assets: dg.AssetsDefinition) -> dg.JobDefinition:
    from dagster_databricks import databricks_pyspark_step_launcher

    defs = dg.Definitions(
        assets=list(assets),
        jobs=[dg.define_asset_job(JOB_NAME, executor_def=dg.in_process_executor)],
        resources={
            "pyspark_step_launcher": databricks_pyspark_step_launcher,
            "io_manager": dg.FilesystemIOManager.configure_at_launch(),
        },
    )
    return defs.resolve_job_def(JOB_NAME)


def fingerprint_job() -> dg.JobDefinition:
    return _job(remote_fingerprint)


def adlfs_fingerprint_job() -> dg.JobDefinition:
    """The same job from code that needs adlfs at load time (like a code location importing it)."""
    import adlfs  # noqa: F401

    return _job(remote_fingerprint)
