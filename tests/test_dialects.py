"""BigQuery and Snowflake cannot be reached from here, so every model and data test is
compiled for them offline with their own dbt adapters, and the compiled SQL is checked
against their dialects (tests/warehouse_dialects.py): a DuckDB-only function in a model,
or a warehouse missing from a dispatched macro, fails here."""

from __future__ import annotations

import pytest

from orchestration.core.settings import PROJECT_ROOT
from tests.conftest import project_copy
from tests.warehouse_dialects import compile_models, foreign_models, foreign_sql

WAREHOUSES = ("bigquery", "snowflake")


@pytest.mark.parametrize("incremental", [False, True], ids=["first run", "incremental run"])
@pytest.mark.parametrize("warehouse", WAREHOUSES)
def test_every_model_compiles_to_the_warehouses_own_sql(warehouse, incremental, tmp_path):
    compiled = compile_models(PROJECT_ROOT / "dbt_project", warehouse, tmp_path, incremental)
    files = list(compiled.rglob("*.sql"))
    # A model's tests are compiled into a folder named after the YAML file defining them.
    tests = [path for path in files if any(part.endswith(".yml") for part in path.parts)]
    assert len(files) - len(tests) >= 38 and len(tests) >= 90
    assert foreign_models(compiled, warehouse) == {}


def test_a_duckdb_only_function_in_a_model_is_caught(tmp_path):
    project = project_copy(tmp_path)
    (project / "models" / "marts" / "probe.sql").write_text(
        "select list(user_id) as ids, epoch_ms(1) as at, max(user_id)::text as top\n"
        "from {{ ref('user_metrics') }}\n"
    )
    found = {}
    for warehouse in WAREHOUSES:
        compiled = compile_models(project, warehouse, tmp_path / warehouse, incremental=False)
        found[warehouse] = foreign_models(compiled, warehouse)
    probe = "behavioral_segments/models/marts/probe.sql"
    assert found["bigquery"] == {
        probe: [
            ":: casts are not bigquery's",
            "epoch_ms() is not a known bigquery function",
            "list() is not a known bigquery function",
        ]
    }
    assert found["snowflake"] == {
        probe: [
            "epoch_ms() is not a known snowflake function",
            "list() is not a known snowflake function",
        ]
    }


def test_a_warehouse_missing_from_a_dispatched_macro_stops_its_compile(tmp_path):
    project = project_copy(tmp_path)
    hashing = project / "macros" / "adapters" / "hashing.sql"
    text = hashing.read_text()
    start = text.index("{% macro snowflake__sha256_hex")
    end = text.index("{%- endmacro %}", start) + len("{%- endmacro %}")
    hashing.write_text(text[:start] + text[end:])
    with pytest.raises(AssertionError, match="add snowflake__sha256_hex to"):
        compile_models(project, "snowflake", tmp_path / "target", incremental=False)


@pytest.mark.parametrize(
    ("sql", "warehouse", "problems"),
    [
        ("select median(x) from t", "bigquery", ["median() is not a known bigquery function"]),
        ("select median(x) from t", "snowflake", []),
        ("select x from t where exists (select 1) and y in (1, 2)", "snowflake", []),
        ("select cast(x as int64)::string from t", "bigquery", [":: casts are not bigquery's"]),
        ("select to_hex(sha256(x)) from t", "bigquery", []),
    ],
)
def test_the_dialect_check(sql, warehouse, problems):
    assert foreign_sql(sql, warehouse) == problems


def test_sql_that_does_not_parse_in_the_dialect_is_caught():
    (problem,) = foreign_sql("select a from t where", "bigquery")
    assert problem.startswith("does not parse:")
