"""Daily partitions of the event-level models, by the UTC day events occurred on."""

import os

import dagster as dg

# The first day a backfill may start from (YYYY-MM-DD); the demo data starts on 2026-01-01.
PARTITIONS_START = os.environ.get("SEGMENTS_PARTITIONS_START", "2026-01-01")

daily_partitions = dg.DailyPartitionsDefinition(
    start_date=PARTITIONS_START, timezone="UTC", end_offset=1
)
