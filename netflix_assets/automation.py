"""The one automation condition of silver and gold: follow the layer above, but never
follow what a whole-job run is already materializing itself.

Why `AutomationCondition.eager()` is not enough (read in Dagster 1.13.27's source,
`dagster/_core/definitions/declarative_automation/`):

- `eager()` (automation_condition.py:926-944) is `in_latest_time_window &
  (newly_missing | any_deps_updated).since_last_handled() & ~any_deps_missing &
  ~any_deps_in_progress & ~in_progress`. It already refuses to fire while a parent or
  the asset itself is in progress: adding `~any_deps_in_progress()` or `~in_progress()`
  changes nothing. But `in_progress` (`run_in_progress`, automation_condition.py:569-578)
  means "part of an in-progress run *that has not yet executed it*": once a run has
  materialized the partition, the run being still at work no longer counts.
- `any_deps_updated()` (automation_condition.py:853-870) ignores a parent's update only
  when `executed_with_root_target`, i.e. when the run that updated the parent also
  selects this asset. That test (operands/run_operands.py:38) reads
  `run_record.dagster_run.asset_selection or set()`, and a run of a *whole* asset job has
  no asset selection: the daemon creates the landing sensor's `RunRequest(job_name=...)`
  with `asset_selection=None` (`_daemon/sensor.py:1505-1509`). So when
  `landed_titles_job` (bronze titles and everything downstream, `jobs.py`) materializes
  gold/netflix_titles, gold/dim_date's only input, the update counts as news for
  dim_date although the same run materializes dim_date next. That arms dim_date's
  `since_last_handled()` (automation_condition.py:389-402); normally `~in_progress`
  holds it while dim_date's step waits, and dim_date's own materialization resets it.
- The reset can be missed: one tick reads `newly_updated` through the asset records it
  prefetched when it started (automation_condition_evaluator.py:137,
  `_utils/caching_instance_queryer.py:411-422`), but `in_progress` from the live event
  log (`_core/storage/partition_status_cache.py:399`, attempts without
  materializations of unfinished runs). When the run materializes dim_date while a tick
  is being evaluated (seconds on 2 busy cores), that tick sees dim_date "not updated"
  and "not in progress": it requests dim_date again while the first run is still going,
  which is the double run of the issue (`any_deps_updated` true, `in_progress` false).
  `test_automation.py` reproduces it.

So `FOLLOW_UPSTREAM` is `eager()` with one change: a parent's update made by a run of a
whole job does not count, exactly as Dagster already discounts one made by a run that
selects this asset. Those runs are the ones the landing sensor (`landed_titles_job` or
`lakehouse_job`) and the daily schedule (`lakehouse_job`) launch: they never pass an
asset selection, and each job holds everything downstream of what it materializes, so
such a run always materializes the follower itself. Updates from runs of part of the
graph (a UI click, a backfill, follow_upstream's own runs) are followed as before.

Dagster's built-in operands cannot say "the asset's latest run is still in progress"
(`run_in_progress` stops at the step; `executed_with_*` filter runs on selection and
tags, not status); a custom Python condition would have to be evaluated in the code
server (`use_user_code_server=True` on the sensor). What still gets through (a whole job
launched from the UI launchpad has no selection and no such tag) is serialized by the
per-day run limit of `deploy/local/dagster.yaml` and `deploy/prod/dagster.yaml`.
"""

import dagster as dg
from dagster._core.storage.tags import SCHEDULE_NAME_TAG, SENSOR_NAME_TAG

# The sensor and the schedule that launch whole jobs (bronze/sensors.py); the tests check
# that they exist and that every job they launch is closed under downstream.
WHOLE_JOB_SENSOR = "landing_zone_sensor"
WHOLE_JOB_SCHEDULE = "daily_lookup_pull"

AC = dg.AutomationCondition

executed_by_whole_job_run = (
    AC.executed_with_tags(tag_values={SENSOR_NAME_TAG: WHOLE_JOB_SENSOR})
    | AC.executed_with_tags(tag_values={SCHEDULE_NAME_TAG: WHOLE_JOB_SCHEDULE})
).with_label("executed_by_whole_job_run")

# `any_deps_updated()` with the whole-job runs discounted like the runs that select the asset.
any_deps_updated_elsewhere = AC.any_deps_match(
    (AC.newly_updated() & ~AC.executed_with_root_target() & ~executed_by_whole_job_run).with_label(
        "newly_updated_outside_this_run"
    )
    | AC.will_be_requested()
).with_label("any_deps_updated_elsewhere")

FOLLOW_UPSTREAM = (
    AC.in_latest_time_window()
    & (AC.newly_missing() | any_deps_updated_elsewhere).since_last_handled()
    & ~AC.any_deps_missing()
    & ~AC.any_deps_in_progress()
    & ~AC.in_progress()
).with_label("follow_upstream")
