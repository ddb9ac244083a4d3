"""What the last `segments run` of a warehouse saw, recorded beside it. A rerun that would
see the same thing (same as_of, same landing files, same project, the warehouse and the
export as that run left them) has nothing to compute: the command answers from the record
in well under a second instead of starting Dagster and dbt. Any difference, or --force,
runs the pipeline. Kept outside the warehouse so the check never opens it."""

from __future__ import annotations

import json
from pathlib import Path

from orchestration.core.settings import DBT_PROJECT_DIR, DUCKDB, PROJECT_ROOT, Settings

RECORD_SUFFIX = ".last-run.json"


def newest_source_mtime(project_dir: Path) -> float:
    """The newest change to the dbt project's models, macros, tests or configuration."""
    sources = [project_dir / "dbt_project.yml", project_dir / "profiles.yml"]
    for folder in ("models", "macros", "tests"):
        sources.extend(p for p in (project_dir / folder).rglob("*") if p.is_file())
    return max(p.stat().st_mtime for p in sources if p.exists())


def _file_state(path: Path) -> list[int] | None:
    try:
        stat = path.stat()
    except FileNotFoundError:
        return None
    return [stat.st_size, stat.st_mtime_ns]


def _landing_state(landing_dir: Path) -> list[list]:
    """Every file under the landing zone by size and modification time: a new, changed or
    removed file changes it. (Ingestion itself keys files by content hash.)"""
    return sorted(
        [str(path.relative_to(landing_dir)), *_file_state(path)]
        for path in landing_dir.rglob("*")
        if path.is_file()
    )


def fingerprint(settings: Settings, export_folder: str = "") -> dict:
    code = PROJECT_ROOT / "orchestration"
    return {
        "as_of": settings.as_of_text,
        "dbt_vars": settings.dbt_vars,
        "landing": _landing_state(settings.landing_dir),
        "project": [
            newest_source_mtime(DBT_PROJECT_DIR),
            max(p.stat().st_mtime for p in code.rglob("*.py")),
        ],
        "warehouse": _file_state(settings.warehouse),
        "warehouse_wal": _file_state(Path(f"{settings.warehouse}.wal")),
        "export_manifest": _file_state(Path(export_folder) / "manifest.json")
        if export_folder
        else None,
    }


def _record_path(settings: Settings) -> Path:
    return Path(f"{settings.warehouse}{RECORD_SUFFIX}")


def record(settings: Settings, export_folder: str, summary_text: str) -> None:
    """After a successful run: what it saw and what it printed."""
    _record_path(settings).write_text(
        json.dumps(
            {
                "export_folder": export_folder,
                "fingerprint": fingerprint(settings, export_folder),
                "summary": summary_text,
            }
        )
    )


def unchanged_since_last_run(settings: Settings) -> str | None:
    """The last run's summary when nothing it depended on has changed since, else None."""
    if settings.full_refresh or settings.rebuild_history or settings.target != DUCKDB:
        # Another warehouse can change without the file knowing: always run.
        return None
    try:
        last = json.loads(_record_path(settings).read_text())
        current = fingerprint(settings, last["export_folder"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return last["summary"] if last["fingerprint"] == current else None


def forget(settings: Settings) -> None:
    """Before a run changes the warehouse: a run that dies leaves no record to trust."""
    _record_path(settings).unlink(missing_ok=True)
