"""Every dbt model and every column it produces is described in the model YAMLs
(dbt_project/models/*/_*.yml, segment_settings.yml): the descriptions are what dbt docs,
the Dagster asset catalog and the analysts read. The columns a model produces are read
from the project built empty (the session fixture `empty_warehouse`): information_schema
for the models that are relations, and the compiled query, described, for the ephemeral
ones (staging views that never become relations)."""

import duckdb

from orchestration.transform.dbt_commands import load_manifest

PACKAGE = "behavioral_segments"


def _models(manifest: dict) -> dict[str, dict]:
    return {
        node["name"]: node
        for node in manifest["nodes"].values()
        if node["resource_type"] == "model" and node["package_name"] == PACKAGE
    }


def _relation_columns(conn: duckdb.DuckDBPyConnection, models: dict[str, dict]) -> dict:
    """The columns of each model that is a relation, from information_schema."""
    rows = conn.execute(
        """
        select table_schema, table_name, column_name
        from information_schema.columns
        where table_catalog = current_database()
        order by table_schema, table_name, ordinal_position
        """
    ).fetchall()
    by_relation: dict[tuple[str, str], list[str]] = {}
    for schema, table, column in rows:
        by_relation.setdefault((schema, table), []).append(column)
    return {
        name: by_relation.get((node["schema"], node.get("alias") or name))
        for name, node in models.items()
    }


def _ephemeral_columns(empty_warehouse, conn: duckdb.DuckDBPyConnection, names: list[str]):
    """The columns of each ephemeral model: its compiled query, described."""
    if not names:
        return {}
    # A selector, not the names: dbt compile prints every node selected by name.
    result = empty_warehouse.dbt(["compile", "--select", "config.materialized:ephemeral"])
    assert result.success, f"dbt compile of the ephemeral models failed: {result.exception}"
    compiled = {outcome.node.name: outcome.node.compiled_code for outcome in result.result}
    columns = {}
    for name in names:
        query = conn.execute(f"select * from ({compiled[name]}) as model_query limit 0")
        columns[name] = [column[0] for column in query.description]
    return columns


def test_every_model_and_column_is_described(empty_warehouse):
    models = _models(load_manifest())
    assert models, "the manifest has no models"
    ephemeral = sorted(
        name for name, node in models.items() if node["config"]["materialized"] == "ephemeral"
    )
    conn = duckdb.connect(str(empty_warehouse.path))
    try:
        produced = _relation_columns(conn, models)
        produced.update(_ephemeral_columns(empty_warehouse, conn, ephemeral))
    finally:
        conn.close()

    problems = []
    for name, node in sorted(models.items()):
        if not (node.get("description") or "").strip():
            problems.append(f"{name}: the model has no description")
        columns = produced[name]
        if columns is None:
            problems.append(f"{name}: not found in the empty build")
            continue
        documented = node.get("columns", {})
        described = {
            column for column, spec in documented.items() if (spec.get("description") or "").strip()
        }
        problems += [
            f"{name}.{column}: undescribed" for column in columns if column not in described
        ]
        problems += [
            f"{name}.{column}: in the YAML but not produced by the model"
            for column in documented
            if column not in columns
        ]
    assert not problems, f"{len(problems)} documentation gaps:\n" + "\n".join(problems)
