"""dbt commands run inside this process, through dbt's programmatic runner.

A dbt command in a process of its own pays, every time, for starting Python, importing dbt
and its adapter, `dbt --version`, and parsing the project: about 3 s before its first SQL
statement, four times a run. Here dbt is imported once, the project is parsed once for a
run's vars and environment, and that parse serves every later command with the same ones
(dbt's documented reuse of a manifest across invocations). What dbt reports comes back as
the same Dagster events dagster-dbt makes of a subprocess's log."""

from __future__ import annotations

import hashlib
import os
import shutil
import threading
from argparse import ArgumentParser
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from dagster_dbt import DagsterDbtTranslator, DbtCliResource
from dagster_dbt.asset_utils import (
    extract_runtime_selection_from_args,
    get_updated_cli_invocation_params_for_context,
)
from dagster_dbt.core.dbt_cli_event import DbtCoreCliEventMessage
from dagster_dbt.dbt_manifest import validate_manifest

from orchestration.core.run_record import newest_source_mtime

# What a parse depends on besides the project's files: its vars and the environment the
# profile and macros read. Parses are kept per warehouse: a new warehouse path changes the
# profile, and dbt then parses in full ("profile has changed").
ENVIRONMENT_PREFIXES = ("SEGMENTS_", "DBT_")
PARSES_FOLDER = "parses"
KEEP_PARSES = 10

_parsed: dict[tuple, Any] = {}


class DbtCommandError(RuntimeError):
    """A dbt command that failed; the message carries dbt's own errors."""


# The marker after which a failure lists dbt's error lines, as dagster-dbt writes it.
DBT_ERRORS_MARKER = "Errors parsed from dbt logs:"


def _vars_of(args: Sequence[str]) -> str:
    parser = ArgumentParser(add_help=False)
    parser.add_argument("--vars", default="{}")
    known, _ = parser.parse_known_args(list(args))
    return known.vars


def _environment() -> tuple[tuple[str, str], ...]:
    return tuple(
        sorted((k, v) for k, v in os.environ.items() if k.startswith(ENVIRONMENT_PREFIXES))
    )


def parse_key(project_dir: Path, vars_text: str) -> tuple:
    """What a parse of the project is valid for: its files as they are, these vars, and
    this environment."""
    return (str(project_dir), vars_text, _environment(), newest_source_mtime(project_dir))


def parse_folder(target_root: Path) -> Path:
    """Where the parse of this warehouse and target is kept between runs, so the next run's
    parse is partial."""
    identity = "|".join(
        [os.environ.get("SEGMENTS_WAREHOUSE", ""), os.environ.get("SEGMENTS_DBT_TARGET", "")]
    )
    return target_root / PARSES_FOLDER / hashlib.sha256(identity.encode()).hexdigest()[:16]


def prune_siblings(current: Path, keep: int) -> None:
    """Removes the oldest folders beside `current` so that, with it, `keep` remain."""
    if not current.parent.is_dir():
        return
    older = sorted(
        (path for path in current.parent.iterdir() if path.is_dir() and path != current),
        key=lambda path: path.stat().st_mtime,
    )
    for path in older[: max(len(older) - keep + 1, 0)]:
        shutil.rmtree(path, ignore_errors=True)


def _release_warehouse() -> None:
    """Closes the DuckDB database dbt-duckdb keeps open after a command (in a class
    attribute, for the next command of the same process): the checks and the export open
    the same file next, read-only or with other settings, which DuckDB refuses while
    another handle of this process holds it."""
    try:
        from dbt.adapters.duckdb.connections import DuckDBConnectionManager
    except ImportError:
        return
    environment = DuckDBConnectionManager._ENV
    DuckDBConnectionManager.close_all_connections()
    if environment is not None:
        environment.close()


# The dbt events dagster-dbt turns into outputs and check results (a node's result).
RESULT_EVENTS = frozenset({"LogSeedResult", "LogModelResult", "LogSnapshotResult", "LogTestResult"})


class InProcessDbtCli(DbtCliResource):
    """dagster-dbt's resource, with each command run by dbt's programmatic runner in this
    process instead of a subprocess; `cli(...)` keeps its signature, and its result
    `stream()`s the same Dagster events and `wait()`s the same way."""

    def cli(
        self,
        args: Sequence[str],
        *,
        raise_on_error: bool = True,
        manifest=None,
        dagster_dbt_translator: DagsterDbtTranslator | None = None,
        context=None,
        target_path: Path | None = None,
    ) -> InProcessInvocation:
        translator = dagster_dbt_translator or DagsterDbtTranslator()
        cleaned, selects, excludes = extract_runtime_selection_from_args(args)
        params = get_updated_cli_invocation_params_for_context(
            context=context,
            manifest=validate_manifest(manifest) if manifest else {},
            dagster_dbt_translator=translator,
            runtime_selects=selects,
            runtime_excludes=excludes,
        )
        project_dir = Path(
            params.dbt_project.project_dir if params.dbt_project else self.project_dir
        )
        target_root = project_dir / "target"
        target_path = Path(target_path or target_root)
        if not target_path.is_absolute():
            target_path = project_dir / target_path
        flags = [
            "--project-dir",
            str(project_dir),
            "--profiles-dir",
            str(self.profiles_dir or project_dir),
            "--no-send-anonymous-usage-stats",
            "--no-version-check",
        ]
        if params.indirect_selection:
            flags += ["--indirect-selection", params.indirect_selection]
        return InProcessInvocation(
            command=[*cleaned, *params.selection_args],
            flags=flags,
            project_dir=project_dir,
            target_root=target_root,
            target_path=target_path,
            manifest=params.manifest,
            translator=params.dagster_dbt_translator,
            project=params.dbt_project,
            context=context,
            raise_on_error=raise_on_error,
        )


class InProcessInvocation:
    """One dbt command, run on the first call of stream() or wait()."""

    def __init__(
        self,
        *,
        command: list[str],
        flags: list[str],
        project_dir: Path,
        target_root: Path,
        target_path: Path,
        manifest: Mapping[str, Any],
        translator: DagsterDbtTranslator,
        project,
        context,
        raise_on_error: bool,
    ):
        self.command = command
        self.flags = flags
        self.project_dir = project_dir
        self.target_root = target_root
        self.target_path = target_path
        self.manifest = manifest
        self.translator = translator
        self.project = project
        self.context = context
        self.raise_on_error = raise_on_error
        self.events: list[dict] = []
        self.errors: list[str] = []
        self.result = None

    @property
    def dbt_command(self) -> str:
        return "dbt " + " ".join(self.command)

    def _log(self, message: str) -> None:
        if self.context is not None:
            self.context.log.info(message)

    def _collect(self, event) -> None:
        """Keeps the events a Dagster event is made of, and the errors: a command fires
        thousands more (every statement at debug level), which dbt's log file records."""
        if event.info.level == "error":
            self.errors.append(event.info.msg)
        if event.info.name in RESULT_EVENTS:
            from dbt_common.events.functions import msg_to_dict

            self.events.append(msg_to_dict(event))

    def _parsed_manifest(self, vars_text: str):
        """The project parsed for these vars and this environment: kept in this process
        for the next command, and on disk per warehouse for the next process. Each
        command gets a copy of its own (dbt's Manifest.deepcopy, 0.14 s): dbt marks the
        nodes it compiles, and a node compiled again in the same manifest loses the
        ephemeral models it inlines. (copy.deepcopy is no substitute: its copy of a fresh
        parse mixes up the manifest's lookups.)"""
        from dbt.cli.main import dbtRunner

        key = parse_key(self.project_dir, vars_text)
        if key in _parsed:
            return _copy_manifest(_parsed[key])
        folder = parse_folder(self.target_root)
        folder.mkdir(parents=True, exist_ok=True)
        prune_siblings(folder, KEEP_PARSES)
        outcome = dbtRunner(callbacks=[self._collect]).invoke(
            ["parse", "--quiet", "--vars", vars_text, "--target-path", str(folder), *self.flags]
        )
        if not outcome.success:
            raise DbtCommandError(self._failure("dbt parse", outcome.exception))
        _parsed.clear()
        _parsed[key] = outcome.result
        return _copy_manifest(outcome.result)

    def _run(self) -> None:
        if self.result is not None:
            return
        from dbt.cli.main import dbtRunner

        self._log(f"Running dbt command: `{self.dbt_command}`.")
        self.target_path.mkdir(parents=True, exist_ok=True)
        arguments = [
            *self.command,
            *self.flags,
            "--target-path",
            str(self.target_path),
            "--log-path",
            str(self.target_path),
        ]
        if self.command[:1] == ["parse"]:
            runner = dbtRunner(callbacks=[self._collect])
        else:
            manifest = self._parsed_manifest(_vars_of(self.command))
            runner = dbtRunner(manifest=manifest, callbacks=[self._collect])
        try:
            self.result = runner.invoke(arguments)
        finally:
            _release_warehouse()
        self._log(f"Finished dbt command: `{self.dbt_command}`.")
        if self.raise_on_error and not self.result.success:
            raise DbtCommandError(self._failure(self.dbt_command, self.result.exception))

    def _failure(self, command: str, exception: BaseException | None) -> str:
        lines = [f"The dbt command `{command}` failed."]
        errors = self.errors or ([str(exception)] if exception else [])
        if errors:
            lines += ["", DBT_ERRORS_MARKER, *errors]
        return "\n".join(lines)

    def is_successful(self) -> bool:
        self._run()
        return bool(self.result.success)

    def wait(self) -> InProcessInvocation:
        self._run()
        return self

    def stream(self) -> Iterator:
        """The Dagster events of the command's results: an output per model built, a check
        result per test, as dagster-dbt makes them from dbt's structured log."""
        self._run()
        for raw in self.events:
            event = DbtCoreCliEventMessage(raw_event=raw, event_history_metadata={})
            yield from event.to_default_asset_events(
                manifest=self.manifest,
                dagster_dbt_translator=self.translator,
                context=self.context,
                target_path=self.target_path,
                project=self.project,
            )


_COPY_LOCK = threading.Lock()


def _copy_manifest(manifest):
    """Manifest.deepcopy(), but for the disabled nodes (models disabled on this target),
    which dbt-core 1.11's deepcopy fails on ('list' object has no attribute 'from_dict':
    it copies each list of them as if it were one node): they are copied one by one."""
    with _COPY_LOCK:  # the cached manifest is changed for the moment of the copy
        disabled = manifest.disabled
        manifest.disabled = {}
        try:
            copied = manifest.deepcopy()
        finally:
            manifest.disabled = disabled
    copied.disabled = {
        key: [type(node).from_dict(node.to_dict(omit_none=True)) for node in nodes]
        for key, nodes in disabled.items()
    }
    return copied
