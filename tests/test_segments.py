"""The default segment library, memberships with history, holdouts and suppression, on
hand-made landings run through the whole pipeline."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from pathlib import Path

import pytest

from tests.conftest import AS_OF, at, event, query, run, write_events, write_rows

D, H, M = timedelta(days=1), timedelta(hours=1), timedelta(minutes=1)
EXPORT = "20260301T0000Z"


def scenario() -> tuple[list[dict], list[str]]:
    rows: list[dict] = []

    def add(user, event_type, when, **fields):
        rows.append(event(f"e{len(rows):04d}", event_type, at(when), user_id=user, **fields))

    for offset in (-6 * D, -4 * D, -2 * D):  # three abandoned carts in 7 days
        add("hca3", "add_to_cart", offset, price=5)
    for offset in (-6 * D, -4 * D):
        add("hca2", "add_to_cart", offset, price=5)
    for offset in (-6 * D, -4 * D, -2 * D):
        add("hca_conv", "add_to_cart", offset, price=5)
    add("hca_conv", "purchase", -1 * D + H, revenue=5)  # bought after the last abandonment
    add("fb", "purchase", -10 * D, order_id="fb-1", revenue=20)
    add("fb", "purchase", -3 * D, order_id="fb-2", revenue=20)
    add("fb1", "purchase", -3 * D, order_id="fb1-1", revenue=20)
    add("nc", "purchase", -10 * D, order_id="nc-1", revenue=20)
    add("nc", "purchase", -3 * D, order_id="nc-2", revenue=20)
    add("gone", "purchase", -10 * D, order_id="g-1", revenue=20)
    add("gone", "purchase", -3 * D, order_id="g-2", revenue=20)
    for i in range(6):
        add("hib6", "product_view", -(i + 1) * H, product_id=f"p{i}")
        add("hib6p", "product_view", -(i + 1) * H, product_id=f"p{i}")
    add("hib6p", "purchase", -30 * M, revenue=3)
    for i in range(5):
        add("hib5", "product_view", -(i + 1) * H, product_id=f"p{i}")
    for minutes in (0, 4, 10):
        add("ce", "product_view", -1 * D + minutes * M, category="toys", product_id="t1")
    for minutes in (0, 4, 11):
        add("ce_slow", "product_view", -1 * D + minutes * M, category="toys", product_id="t1")
    for i, seconds in enumerate((200, 30, 30)):
        add(
            "ld",
            "product_view",
            -2 * D + i * M,
            session_id="s-ld",
            product_id=f"p{i}",
            duration_seconds=seconds,
        )
    for i, seconds in enumerate((200, 30)):
        add(
            "ld2",
            "product_view",
            -2 * D + i * M,
            session_id="s-ld2",
            product_id=f"p{i}",
            duration_seconds=seconds,
        )
    for i in range(4):
        add("de", "page_view", -(i + 1) * 2 * H, session_id=f"s-de-{i}")
    add("re", "page_view", -20 * D)
    add("re_recent", "page_view", -13 * D)
    add("re_old", "page_view", -100 * D)
    add("nv", "page_view", -3 * D)
    users = sorted({row["user_id"] for row in rows})
    return rows, users


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    root = tmp_path_factory.mktemp("segments")
    rows, users = scenario()
    landing = root / "landing"
    write_events(landing, "events.csv", rows)
    write_rows(
        landing / "customers" / "customers.csv",
        [
            {
                "customer_id": user,
                "email": f" {user.upper()}@Example.com ",
                "consent_email": user != "nc",
                "consent_push": True,
            }
            for user in users
        ],
    )
    write_rows(
        landing / "erasure_requests" / "requests.csv",
        [{"user_id": "gone", "requested_at": "2026-02-28T00:00:00Z"}],
    )
    run(landing, root / "warehouse.duckdb")
    return root


def members(root: Path, segment: str) -> set[str]:
    return {
        user
        for (user,) in query(
            root / "warehouse.duckdb",
            "select user_id from marts.segment_memberships where segment = $s",
            {"s": segment},
        )
    }


def exported(root: Path, segment: str, export_id: str = EXPORT) -> set[str]:
    lines = (root / "exports" / export_id / f"{segment}.csv").read_text().splitlines()[1:]
    return {line.split(",")[0] for line in lines}


def reason(root: Path, segment: str, user: str) -> str | None:
    (value,) = query(
        root / "warehouse.duckdb",
        "select suppression_reason from marts.audience_members where segment = $s and user_id = $u",
        {"s": segment, "u": user},
    )
    return value[0]


@pytest.mark.parametrize(
    ("segment", "member", "not_member"),
    [
        ("high_cart_abandoners", "hca3", "hca2"),
        ("potentially_lost", "hca3", "hca_conv"),
        ("frequent_buyers", "fb", "fb1"),
        ("high_intent_browsers", "hib6", "hib5"),
        ("high_intent_browsers", "hib6", "hib6p"),
        ("category_enthusiasts", "ce", "ce_slow"),
        ("long_dwellers", "ld", "ld2"),
        ("daily_engaged", "de", "nv"),
        ("re_engagement", "re", "re_recent"),
        ("re_engagement", "re", "re_old"),
        ("new_visitors", "nv", "re"),
    ],
)
def test_segment_rule_selects_its_member_and_not_the_near_miss(
    pipeline, segment, member, not_member
):
    found = members(pipeline, segment)
    assert member in found
    assert not_member not in found


def test_category_enthusiasts_name_the_category(pipeline):
    assert query(
        pipeline / "warehouse.duckdb",
        "select category from segments.seg_category_enthusiasts where user_id = 'ce'",
    ) == [("toys",)]


def test_every_user_sits_in_exactly_one_journey_stage(pipeline):
    per_user = query(
        pipeline / "warehouse.duckdb",
        "select u.user_id, count(m.segment) from marts.user_metrics u left join "
        "marts.segment_memberships m on m.user_id = u.user_id and m.segment like 'journey_%' "
        "group by 1 having count(m.segment) <> 1",
    )
    assert per_user == []
    assert "journey_loyalty" in {
        s
        for (s,) in query(
            pipeline / "warehouse.duckdb",
            "select segment from marts.segment_memberships where user_id = 'fb' "
            "and segment like 'journey_%'",
        )
    }


def test_holdout_is_a_stable_hash_of_segment_and_user(pipeline):
    rows = query(
        pipeline / "warehouse.duckdb",
        "select segment, user_id, is_holdout from intermediate.int_segment_members",
    )
    assert rows
    for segment, user, is_holdout in rows:
        bucket = int(hashlib.md5(f"{segment}|{user}".encode()).hexdigest()[:8], 16) % 10000
        assert is_holdout == (bucket < 1000), (segment, user)


def test_holdout_members_are_never_exported(pipeline):
    held = query(
        pipeline / "warehouse.duckdb",
        "select segment, user_id from marts.segment_memberships where is_holdout",
    )
    for segment, user in held:
        assert user not in exported(pipeline, segment)


def test_user_without_consent_for_the_channel_is_not_exported(pipeline):
    assert "nc" in members(pipeline, "frequent_buyers")
    assert "nc" not in exported(pipeline, "frequent_buyers")
    assert reason(pipeline, "frequent_buyers", "nc") in ("no_consent", "holdout")


def test_erased_user_is_in_no_membership_and_no_file(pipeline):
    assert query(
        pipeline / "warehouse.duckdb",
        "select count(*) from marts.segment_membership_history where user_id = 'gone'",
    ) == [(0,)]
    for path in (pipeline / "exports" / EXPORT).glob("*.csv"):
        assert "gone" not in path.read_text()


def test_abandoner_who_bought_since_is_suppressed_as_converted(pipeline):
    assert "hca_conv" in members(pipeline, "high_cart_abandoners")
    assert reason(pipeline, "high_cart_abandoners", "hca_conv") in ("converted", "holdout")


def test_frequency_cap_keeps_the_highest_priority_segments(pipeline):
    rows = query(
        pipeline / "warehouse.duckdb",
        "select a.segment, a.suppression_reason from marts.audience_members a "
        "join intermediate.int_segment_members s using (segment, user_id) "
        "where a.user_id = 'hca3' and a.suppression_reason is distinct from 'holdout' "
        "order by s.priority",
    )
    kept = [segment for segment, why in rows if why is None]
    capped = [segment for segment, why in rows if why == "frequency_cap"]
    assert len(kept) == 2 and capped
    assert rows[:2] == [(segment, None) for segment in kept]  # the two most important


def test_exported_email_is_the_sha256_of_the_trimmed_lowercase_address(pipeline):
    # Customers' emails were landed as " USER@Example.com ".
    rows = [
        line.split(",")
        for path in (pipeline / "exports" / EXPORT).glob("*.csv")
        if "." not in path.stem
        for line in path.read_text().splitlines()[1:]
    ]
    assert rows
    for user, digest, *_ in rows:
        assert digest == hashlib.sha256(f"{user}@example.com".encode()).hexdigest()


def test_export_manifest_records_the_passed_validation(pipeline):
    import json

    manifest = json.loads((pipeline / "exports" / EXPORT / "manifest.json").read_text())
    assert {name: result["success"] for name, result in manifest["validation"].items()} == {
        "audience_exports": True,
        "export_files": True,
        "segment_memberships": True,
        "user_metrics": True,
    }


def test_leaving_and_reentering_opens_a_new_stay_and_cooldown_suppresses_it(tmp_path):
    landing, warehouse = tmp_path / "landing", tmp_path / "warehouse.duckdb"
    write_rows(
        landing / "customers" / "c.csv",
        [{"customer_id": "cd", "email": "cd@example.com", "consent_push": True}],
    )
    views = [event(f"a{i}", "product_view", at(-(i + 1) * H), user_id="cd") for i in range(6)]
    write_events(landing, "day1.csv", views)
    run(landing, warehouse)  # in high_intent_browsers, exported
    run(landing, warehouse, as_of=AS_OF + 2 * D)  # the views are old: out
    later = AS_OF + 2 * D + 12 * H
    write_events(
        landing,
        "day3.csv",
        [
            event(f"b{i}", "product_view", at(-(i + 1) * H, base=later), user_id="cd")
            for i in range(6)
        ],
    )
    run(landing, warehouse, as_of=later)  # back in, within the 3-day cooldown

    stays = query(
        warehouse,
        "select valid_from, valid_to from marts.segment_membership_history "
        "where segment = 'high_intent_browsers' and user_id = 'cd' order by 1",
    )
    assert stays == [(AS_OF, AS_OF + 2 * D), (later, None)]
    exports = tmp_path / "exports"
    first = (exports / EXPORT / "high_intent_browsers.csv").read_text()
    second = exports / "20260303T0000Z" / "high_intent_browsers.removed.csv"
    third = (exports / "20260303T1200Z" / "high_intent_browsers.csv").read_text()
    # md5("high_intent_browsers|cd") falls in bucket 8037 of 10000: not in the 10% holdout.
    assert "cd," in first
    assert "cd," in second.read_text()
    assert "cd," not in third
    assert query(
        warehouse,
        "select suppression_reason from marts.audience_members "
        "where user_id = 'cd' and segment = 'high_intent_browsers'",
    ) == [("cooldown",)]


def test_segment_settings_restate_each_segments_yaml_with_the_defaults(pipeline):
    """marts.segment_settings is what Python reads a segment's settings from; it must say
    what the segment's YAML says, with the project's defaults where the YAML is silent."""
    import yaml

    from orchestration.core.settings import DBT_PROJECT_DIR
    from orchestration.transform.dbt_commands import load_manifest, segment_models

    defaults = yaml.safe_load((DBT_PROJECT_DIR / "dbt_project.yml").read_text())["vars"]
    expected = {}
    for node in segment_models(load_manifest()):
        meta = node["config"]["meta"]["segment"]
        expected[meta["name"]] = (
            node["name"],
            meta.get("channel", "email"),
            meta.get("priority", 100),
            meta.get("holdout_share", defaults["segments__default_holdout_share"]),
            meta.get("cooldown_days", defaults["segments__default_cooldown_days"]),
            meta.get("suppress_converted", False),
            meta.get("recovery_campaign", False),
        )
    rows = query(
        pipeline / "warehouse.duckdb",
        "select segment, model_name, channel, priority, holdout_share, cooldown_days, "
        "suppress_converted, recovery_campaign from marts.segment_settings",
    )
    assert {row[0]: tuple(row[1:]) for row in rows} == expected
