"""Every model compiled for a warehouse this machine cannot reach (BigQuery, Snowflake),
and its SQL checked against that warehouse's dialect.

The compile is dbt's own, with the warehouse's adapter: its macros, quoting and dispatched
forms. Only the connection is left out: it opens to nothing, and the adapter answers
"no such relation" (a first run) or "a table" (an incremental run) without asking.

The check parses each compiled model with sqlglot in the warehouse's dialect, so syntax
the dialect lacks does not pass, and lists every function it calls: each must be one of
the warehouse's functions the project is known to use (WAREHOUSE_FUNCTIONS). sqlglot
alone lets too much through (it reads DuckDB's list() in any dialect), and a list kept by
hand is short: the models call few functions. PostgreSQL's `::` cast fails on BigQuery.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from unittest import mock

import sqlglot
from sqlglot.tokens import TokenType

# The functions the project's SQL calls on each warehouse, each checked against that
# warehouse's function reference. A call of anything else fails the check: a function new
# to the project is added here once someone has made sure the warehouse has it.
WAREHOUSE_FUNCTIONS = {
    "bigquery": {
        "approx_quantiles", "avg", "coalesce", "concat", "count", "datetime_add",
        "datetime_diff", "farm_fingerprint", "floor", "generate_array", "json_value", "lag",
        "lead", "lower", "max", "md5", "min", "mod", "nullif", "percent_rank", "row_number",
        "sha256", "sqrt", "substr", "sum", "timestamp_trunc", "datetime_trunc", "to_hex",
        "trim",
    },
    "snowflake": {
        "avg", "coalesce", "count", "date_trunc", "dateadd", "datediff", "floor", "hash",
        "json_extract_path_text", "lag", "lead", "lower", "max", "md5", "median", "min",
        "mod", "nullif", "percent_rank", "row_number", "sha2", "sqrt", "substr", "sum",
        "to_number", "trim",
    },
}  # fmt: skip
# Words before "(" that are SQL syntax, not calls.
_SYNTAX = {
    "all", "and", "any", "as", "by", "cast", "exists", "filter", "from", "in", "join", "not",
    "offset", "on", "or", "over", "select", "then", "union", "unnest", "using", "values",
    "when", "where", "having", "within", "else", "is",
}  # fmt: skip


class _OfflineHandle:
    def close(self) -> None:
        pass


@contextlib.contextmanager
def offline_adapters(existing: bool, queries: list[str]) -> Iterator[None]:
    """BigQuery's and Snowflake's adapters with no connection: `existing` says whether
    every relation dbt asks about is there (a table), which decides is_incremental(). A
    query a model runs while it compiles is kept in `queries` and answers one null."""
    import agate
    from dbt.adapters.base.impl import BaseAdapter
    from dbt.adapters.bigquery.connections import BigQueryConnectionManager
    from dbt.adapters.bigquery.impl import BigQueryAdapter
    from dbt.adapters.contracts.connection import AdapterResponse, ConnectionState
    from dbt.adapters.snowflake.connections import SnowflakeConnectionManager
    from dbt.adapters.snowflake.impl import SnowflakeAdapter

    def open_nothing(cls, connection):
        connection.handle = _OfflineHandle()
        connection.state = ConnectionState.OPEN
        return connection

    def get_relation(self, database, schema, identifier):
        if not existing:
            return None
        return self.Relation.create(
            database=database, schema=schema, identifier=identifier, type="table"
        )

    def execute(self, sql, auto_begin=False, fetch=False, limit=None):
        queries.append(sql)
        return AdapterResponse("offline"), agate.Table([[None]], ["value"], [agate.Text()])

    with contextlib.ExitStack() as stack:
        for manager in (BigQueryConnectionManager, SnowflakeConnectionManager):
            stack.enter_context(mock.patch.object(manager, "open", classmethod(open_nothing)))
            stack.enter_context(mock.patch.object(manager, "execute", execute))
        for adapter in (BaseAdapter, BigQueryAdapter, SnowflakeAdapter):
            stack.enter_context(mock.patch.object(adapter, "get_relation", get_relation))
        yield


def compile_models(project: Path, target: str, target_path: Path, incremental: bool) -> Path:
    """Compiles every model and data test of `project` for `target` (a profile output);
    returns the folder of the compiled SQL, with the queries run while compiling in its
    `queries` folder."""
    from dbt.cli.main import dbtRunner

    queries: list[str] = []
    with mock.patch.dict("os.environ", {"SEGMENTS_DBT_TARGET": target}):
        with offline_adapters(existing=incremental, queries=queries):
            result = dbtRunner().invoke(
                [
                    "compile",
                    "--project-dir",
                    str(project),
                    "--profiles-dir",
                    str(project),
                    "--target-path",
                    str(target_path),
                    "--no-populate-cache",
                    "--quiet",
                ]
            )
    if not result.success:
        raise AssertionError(f"dbt compile for {target} failed: {result.exception}")
    compiled = target_path / "compiled"
    (compiled / "queries").mkdir(parents=True, exist_ok=True)
    for number, sql in enumerate(queries):
        (compiled / "queries" / f"{number:03d}.sql").write_text(sql)
    return compiled


def _called(sql: str, dialect: str) -> set[str]:
    """The names the SQL calls as functions; not a type's parameters in a cast, as in
    `cast(x as numeric(28, 4))`."""
    tokens = sqlglot.tokenize(sql, read=dialect)
    return {
        name.text.lower()
        for before, name, after in zip([None, *tokens], tokens, tokens[1:], strict=False)
        if after.token_type == TokenType.L_PAREN
        and name.text.isidentifier()
        and name.text.lower() not in _SYNTAX
        and not (before is not None and before.token_type == TokenType.ALIAS)
    }


def foreign_sql(sql: str, dialect: str) -> list[str]:
    """What in `sql` is not known to be `dialect`'s own: calls of functions not in
    WAREHOUSE_FUNCTIONS, `::` casts on BigQuery, and what does not parse there."""
    try:
        sqlglot.parse(sql, read=dialect)
    except sqlglot.errors.ParseError as error:
        return [f"does not parse: {str(error).splitlines()[0]}"]
    unknown = _called(sql, dialect) - WAREHOUSE_FUNCTIONS[dialect]
    found = {f"{name}() is not a known {dialect} function" for name in unknown}
    if dialect == "bigquery" and any(
        token.token_type == TokenType.DCOLON for token in sqlglot.tokenize(sql, read=dialect)
    ):
        found.add(":: casts are not bigquery's")
    return sorted(found)


def foreign_models(compiled: Path, dialect: str) -> dict[str, list[str]]:
    """Per compiled model (its path under `compiled`), what is not `dialect`'s own."""
    found = {}
    for path in sorted(compiled.rglob("*.sql")):
        problems = foreign_sql(path.read_text(), dialect)
        if problems:
            found[str(path.relative_to(compiled))] = problems
    return found
