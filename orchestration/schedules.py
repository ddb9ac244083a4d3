"""Schedules, both off until a data engineer turns them on (UI or `dagster schedule start`).
Each run is computed as of its scheduled time."""

import dagster as dg

from orchestration.jobs import pipeline_job, refresh_job
from orchestration.resources import AS_OF_TAG, REFIT_CLUSTERS_TAG


def _as_of_tags(context: dg.ScheduleEvaluationContext) -> dict[str, str]:
    return {AS_OF_TAG: context.scheduled_execution_time.isoformat()}


@dg.schedule(
    job=refresh_job,
    cron_schedule="5 * * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.STOPPED,
    description="Hourly: ingest new files and rebuild the marts as of the hour.",
)
def hourly_refresh(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    return dg.RunRequest(tags=_as_of_tags(context))


@dg.schedule(
    job=pipeline_job,
    cron_schedule="30 0 * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.STOPPED,
    description="Daily at 00:30 UTC: the whole pipeline as of midnight, validated and exported.",
)
def daily_audiences(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    midnight = context.scheduled_execution_time.replace(hour=0, minute=0, second=0, microsecond=0)
    return dg.RunRequest(tags={AS_OF_TAG: midnight.isoformat()})


@dg.schedule(
    job=refresh_job,
    cron_schedule="15 0 * * 1",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.STOPPED,
    description="Mondays at 00:15 UTC: refit the customer clusters (marts.user_cluster_model) "
    "as of midnight; every other run applies the stored model.",
)
def weekly_cluster_refit(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    midnight = context.scheduled_execution_time.replace(hour=0, minute=0, second=0, microsecond=0)
    return dg.RunRequest(tags={AS_OF_TAG: midnight.isoformat(), REFIT_CLUSTERS_TAG: "true"})


SCHEDULES = [hourly_refresh, daily_audiences, weekly_cluster_refit]
