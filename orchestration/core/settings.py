"""Where the pipeline reads and writes, and as of when: one object shared by the
`segments` command, the Dagster resources and the schedules."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]
# The dbt project: the one in this repository unless SEGMENTS_DBT_PROJECT_DIR names another.
DBT_PROJECT_DIR = Path(
    os.environ.get("SEGMENTS_DBT_PROJECT_DIR", str(PROJECT_ROOT / "dbt_project"))
).resolve()


# The default target: the warehouse file itself (the other targets: core/targets.py).
DUCKDB = "duckdb"


class SettingsError(ValueError):
    """A setting that cannot be used; the message is shown to the user as it is."""


def parse_as_of(text: str) -> datetime:
    """An ISO 8601 instant as naive UTC; no offset means UTC."""
    try:
        value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError as error:
        raise SettingsError(f"--as-of {text!r} is not an ISO 8601 timestamp") from error
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value


def utc_now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


@dataclass(frozen=True)
class Settings:
    landing_dir: Path = Path("data/landing")
    warehouse: Path = Path("data/warehouse.duckdb")
    exports_dir: Path = Path("data/exports")
    # The output of dbt_project/profiles.yml dbt builds in (orchestration/core/targets.py).
    target: str = DUCKDB
    as_of: datetime | None = None
    full_refresh: bool = False
    # A full refresh that rebuilds the membership history too (`--rebuild-history`).
    rebuild_history: bool = False
    dbt_vars: dict[str, object] = field(default_factory=dict)

    @classmethod
    def from_env(cls) -> Settings:
        """The defaults above, overridden by the SEGMENTS_* variables that are set."""
        env = os.environ
        defaults = cls()
        as_of = env.get("SEGMENTS_AS_OF")
        return cls(
            landing_dir=Path(env.get("SEGMENTS_LANDING_DIR", defaults.landing_dir)),
            warehouse=Path(env.get("SEGMENTS_WAREHOUSE", defaults.warehouse)),
            exports_dir=Path(env.get("SEGMENTS_EXPORT_DIR", defaults.exports_dir)),
            target=env.get("SEGMENTS_DBT_TARGET", defaults.target),
            as_of=parse_as_of(as_of) if as_of else None,
        )

    def with_overrides(self, **changes: object) -> Settings:
        return replace(self, **{k: v for k, v in changes.items() if v is not None})

    def resolved(self) -> Settings:
        """Absolute paths and a fixed as_of, so every step of one run agrees."""
        from orchestration.core.targets import WarehouseError, check_target

        try:
            check_target(self.target)
        except WarehouseError as error:
            raise SettingsError(str(error)) from error
        return replace(
            self,
            landing_dir=self.landing_dir.expanduser().resolve(),
            warehouse=self.warehouse.expanduser().resolve(),
            exports_dir=self.exports_dir.expanduser().resolve(),
            as_of=self.as_of or utc_now(),
        )

    @property
    def as_of_text(self) -> str:
        if self.as_of is None:
            raise SettingsError("as_of is not fixed yet; call resolved() first")
        return self.as_of.strftime("%Y-%m-%d %H:%M:%S.%f")


REFIT_CLUSTERS_VAR = "segments__refit_clusters"


def with_cluster_refit(settings: Settings) -> Settings:
    """The settings of a run that refits the customer clusters (marts.user_cluster_model)."""
    return settings.with_overrides(dbt_vars={**settings.dbt_vars, REFIT_CLUSTERS_VAR: True})
