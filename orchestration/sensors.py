"""A sensor that starts the pipeline when new files land."""

import hashlib

import dagster as dg

from orchestration.core.warehouse import WarehouseBusyError
from orchestration.ingest.landing_files import LandedFile, pending_files
from orchestration.jobs import pipeline_job
from orchestration.resources import PipelineSettings


@dg.sensor(
    job=pipeline_job,
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.STOPPED,
    description="Starts the pipeline when files not yet ingested appear in the landing zone.",
)
def new_landing_files(context: dg.SensorEvaluationContext, settings: PipelineSettings):
    resolved = settings.to_settings().resolved()
    try:
        pending = pending_files(resolved.landing_dir, resolved.warehouse)
    except (WarehouseBusyError, OSError) as error:
        return dg.SkipReason(f"cannot read the ingestion ledger now: {error}")
    complete = [found for found in pending if isinstance(found, LandedFile)]
    waiting = len(pending) - len(complete)
    if not complete:
        return dg.SkipReason(
            f"{waiting} landing files still being written (changed within the settle time)"
            if waiting
            else "no new landing files"
        )
    pending = complete
    keys = sorted(f"{landed.path}:{landed.sha256}" for landed in pending)
    # The same set of new files never starts two runs.
    run_key = hashlib.sha256("\n".join(keys).encode()).hexdigest()[:16]
    names = ", ".join(landed.path.name for landed in pending[:5])
    more = f" and {len(pending) - 5} more" if len(pending) > 5 else ""
    context.log.info(f"{len(pending)} new files: {names}{more}")
    return dg.RunRequest(run_key=run_key, tags={"segments/new_files": str(len(pending))})
