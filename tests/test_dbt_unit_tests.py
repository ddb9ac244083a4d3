"""The SQL rules of the segments, marts, audiences and measurement marts are dbt unit
tests, beside the models in their YAML files (`unit_tests:`): each runs one model on a few
given rows, in milliseconds. dbt reads the column types of a model's parents from the
warehouse, so the project is first built empty (the session fixture `empty_warehouse` in
conftest.py: every model, no rows); the unit tests then run against it. Runs of the
pipeline leave them out (dbt_commands.dbt_build_args)."""

import pytest

from orchestration.transform.dbt_commands import load_manifest


def test_every_segment_and_mart_has_unit_tests():
    """A rule without a unit test is a rule only whole pipeline runs check."""
    manifest = load_manifest()
    tested = {node["model"] for node in manifest.get("unit_tests", {}).values()}
    folders = {"segments", "marts", "audiences", "measurement"}
    models = {
        node["name"]
        for node in manifest["nodes"].values()
        if node["resource_type"] == "model" and node["fqn"][1] in folders
    }
    # segment_settings and segment_thresholds restate the segments' YAML (the catalog
    # macro), which a unit test cannot give: whole runs check them (test_segments.py,
    # test_thresholds.py).
    untested = models - tested - {"segment_settings", "segment_thresholds"}
    assert not untested, f"models without a unit test: {sorted(untested)}"


def test_unit_tests_pass(empty_warehouse):
    result = empty_warehouse.dbt(["test", "--select", "test_type:unit"])
    outcomes = [
        outcome for outcome in (result.result or []) if outcome.node.resource_type == "unit_test"
    ]
    assert outcomes, f"no unit test ran: {result.exception}"
    failures = [f"{o.node.name}: {o.message}" for o in outcomes if o.status != "pass"]
    if failures or not result.success:
        pytest.fail("\n".join(failures) or str(result.exception))
