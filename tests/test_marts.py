"""Mart semantics of DESIGN.md on one hand-made landing, as of 2026-03-01 00:00 UTC.
Each user shows one rule; each expected number is worked out beside its assertion."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from tests.conftest import AS_OF, at, event, query, row_of, run, write_events, write_rows

H = timedelta(hours=1)
D = timedelta(days=1)
S = timedelta(seconds=1)
M = timedelta(minutes=1)


def scenario_events() -> list[dict]:
    rows: list[dict] = []

    def add(user: str | None, event_type: str, when: timedelta, **fields) -> None:
        rows.append(event(f"e{len(rows):04d}", event_type, at(when), user_id=user, **fields))

    # Windows: the 7-day window is (as_of - 7d, as_of].
    add("w1", "product_view", -7 * D)  # exactly 7 days old: outside
    add("w1", "product_view", -7 * D + S)  # inside 7d, outside 24h
    add("w1", "product_view", -24 * H)  # exactly 24h old: outside 24h, inside 7d
    add("w1", "product_view", 0 * S)  # at as_of: inside both
    add("w1", "product_view", S)  # after as_of: invisible
    add("w1", "add_to_cart", -2 * D, price=1)  # add_to_cart_7d = 1 (its episode is abandoned)
    # Recency: 2 days, 23:59:59 ago floors to 2.
    add("w2", "page_view", -3 * D + S)
    # Purchases: distinct orders (order_id, else event_id), revenue else price x quantity.
    add("w3", "purchase", -1 * D, order_id="o1", revenue=10)
    add("w3", "purchase", -1 * D, order_id="o1", revenue=5)
    add("w3", "purchase", -2 * D, price=3, quantity=2, revenue=7)
    add("w3", "purchase", -29 * D, price=4, quantity=2)
    add("w3", "purchase", -30 * D, order_id="o-old", revenue=100)  # exactly 30d: outside
    # Sessions in the last 24h: s1 has an event inside; s2 only outside; session-less events
    # split by gaps of more than 30 minutes.
    add("w4", "page_view", -1 * H, session_id="s1")
    add("w4", "page_view", -25 * H, session_id="s1")
    add("w4", "page_view", -25 * H, session_id="s2")
    t1 = -24 * H - 10 * M
    add("w4", "page_view", t1)  # outside the window ...
    add("w4", "page_view", t1 + 30 * M)  # ... same session (gap exactly 30 min), inside
    add("w4", "page_view", t1 + 61 * M)  # gap 31 min: a new session
    add("w4", "page_view", t1 + 91 * M)  # gap 30 min: same session

    # Cart episodes, window W = 24h, recovery 7 days.
    add("c1", "add_to_cart", -10 * D, price=10, quantity=2)
    add("c1", "add_to_cart", -10 * D + 24 * H, price=5)  # exactly W later: merges
    add("c1", "checkout_started", -10 * D + 30 * H)  # merges
    add("c1", "purchase", -10 * D + 54 * H + 3 * D, revenue=25)  # 3 days after abandonment
    add("c2", "add_to_cart", -5 * D, price=8)
    add("c2", "purchase", -5 * D + 24 * H, revenue=8)  # exactly W: converted
    add("c3", "add_to_cart", -5 * D, price=8)
    add("c3", "purchase", -5 * D + 24 * H + S, revenue=8)  # 1s too late: recovered
    add("c4", "add_to_cart", -20 * D, price=8)
    add("c4", "purchase", -20 * D + 24 * H + 7 * D + S, revenue=8)  # after recovery window
    add("c5", "add_to_cart", -12 * H, price=8)  # still open at as_of
    add("c6", "add_to_cart", -24 * H, price=8)  # abandoned exactly at as_of
    add("c7", "add_to_cart", -6 * D, price=1)
    add("c7", "add_to_cart", -6 * D + 25 * H, price=2)  # gap > W: second episode
    add("c8", "add_to_cart", -3 * D, price=1)
    add("c8", "purchase", -3 * D + H, revenue=1)  # converted
    add("c8", "add_to_cart", -3 * D + 2 * H, price=4)  # opens a new episode
    add("c9", "add_to_cart", -4 * D, price=1)
    add("c9", "purchase", -4 * D, revenue=1)  # same instant: converted

    # Identity stitching.
    add(None, "page_view", -5 * D, anonymous_id="anon-i1")
    add(None, "product_view", -4 * D, anonymous_id="anon-i1")
    add("i1", "login", -3 * D, anonymous_id="anon-i1")
    add(None, "product_view", -2 * D, anonymous_id="anon-i2")
    add("i2", "login", H, anonymous_id="anon-i2")  # linked after as_of
    add("i3a", "login", -6 * D, anonymous_id="anon-i3")  # earliest link wins
    add("i3b", "login", -5 * D, anonymous_id="anon-i3")
    add(None, "product_view", -4 * D, anonymous_id="anon-i3")
    # Erasure: the user, and the anonymous visitor linked to them, disappear.
    add(None, "product_view", -4 * D, anonymous_id="anon-gone")
    add("gone", "login", -3 * D, anonymous_id="anon-gone")
    add("gone", "purchase", -2 * D, revenue=50)

    # RFM: purchase days D1 (two purchases), D2, D3; and a one-time buyer.
    add("r1", "purchase", -40 * D + 12 * H, revenue=10)
    add("r1", "purchase", -40 * D + 13 * H, revenue=20)
    add("r1", "purchase", -20 * D + 12 * H, revenue=30)
    add("r1", "purchase", -10 * D + 12 * H, revenue=60)
    add("r2", "purchase", -5 * D + 12 * H, revenue=100)
    return rows


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("marts")
    landing = root / "landing"
    write_events(landing, "events.csv", scenario_events())
    write_rows(
        landing / "erasure_requests" / "requests.csv",
        [{"user_id": "gone", "requested_at": "2026-03-01T00:00:00Z"}],
    )
    run(landing, root / "warehouse.duckdb")
    return root / "warehouse.duckdb"


def metrics(warehouse: Path, user: str) -> dict:
    return row_of(warehouse, "marts.user_metrics", "user_id", user)


def test_event_exactly_seven_days_old_is_outside_the_window(warehouse):
    # In 7d: -7d+1s, -24h, as_of. Not: -7d (edge), +1s (after as_of).
    assert metrics(warehouse, "w1")["product_views_7d"] == 3


def test_event_exactly_24_hours_old_is_outside_the_24_hour_window(warehouse):
    assert metrics(warehouse, "w1")["product_views_24h"] == 1


def test_events_after_as_of_are_invisible(warehouse):
    assert metrics(warehouse, "w1")["last_event_at"] == AS_OF
    assert metrics(warehouse, "w1")["add_to_cart_7d"] == 1


def test_first_seen_at_is_the_first_event(warehouse):
    assert metrics(warehouse, "w1")["first_seen_at"] == AS_OF - 7 * D


def test_days_since_last_event_is_floored(warehouse):
    assert metrics(warehouse, "w2")["days_since_last_event"] == 2
    assert metrics(warehouse, "w1")["days_since_last_event"] == 0


def test_purchases_count_distinct_orders_and_revenue_falls_back_to_price_times_quantity(
    warehouse,
):
    row = metrics(warehouse, "w3")
    # Orders: o1, the -2d event, the -29d event; the -30d order is on the window's edge.
    assert row["purchases_30d"] == 3
    # 10 + 5 (o1) + 7 (revenue wins over price x quantity) + 4 x 2.
    assert row["revenue_30d"] == pytest.approx(30.0)


def test_sessions_count_session_ids_and_gap_split_sessionless_events(warehouse):
    # s1 (one event inside), plus two derived sessions touching the window.
    assert metrics(warehouse, "w4")["sessions_24h"] == 3


def test_user_without_recent_activity_has_zero_counts_not_nulls(warehouse):
    row = metrics(warehouse, "r1")
    assert (row["product_views_7d"], row["sessions_24h"], row["cart_abandonments_7d"]) == (0, 0, 0)
    assert row["revenue_30d"] == pytest.approx(90.0)  # -20d (30) and -10d (60); -40d is out


def abandonments(warehouse: Path, user: str) -> list[tuple]:
    return query(
        warehouse,
        "select cart_started_at, last_cart_event_at, abandoned_at, cart_events, cart_value, "
        "recovered_at from marts.cart_abandonments where user_id = $u order by cart_started_at",
        {"u": user},
    )


def test_cart_events_within_the_window_merge_into_one_episode_and_recovery_is_found(warehouse):
    start = AS_OF - 10 * D
    abandoned = start + 54 * H
    assert abandonments(warehouse, "c1") == [
        (start, start + 30 * H, abandoned, 3, 25.0, abandoned + 3 * D)  # 10 x 2 + 5 x 1
    ]


def test_purchase_exactly_at_the_window_edge_converts_the_cart(warehouse):
    assert abandonments(warehouse, "c2") == []


def test_purchase_one_second_after_the_window_is_a_recovery(warehouse):
    (row,) = abandonments(warehouse, "c3")
    assert row[2] == AS_OF - 4 * D and row[5] == AS_OF - 4 * D + S


def test_purchase_after_the_recovery_window_does_not_recover(warehouse):
    (row,) = abandonments(warehouse, "c4")
    assert row[5] is None


def test_episode_whose_window_has_not_passed_is_not_a_row(warehouse):
    assert abandonments(warehouse, "c5") == []


def test_episode_abandoned_exactly_at_as_of_is_a_row(warehouse):
    assert [row[2] for row in abandonments(warehouse, "c6")] == [AS_OF]


def test_gap_longer_than_the_window_starts_a_second_episode(warehouse):
    assert [row[3] for row in abandonments(warehouse, "c7")] == [1, 1]
    assert metrics(warehouse, "c7")["cart_abandonments_7d"] == 2


def test_cart_event_after_a_purchase_opens_a_new_episode(warehouse):
    assert abandonments(warehouse, "c8") == [
        (AS_OF - 3 * D + 2 * H, AS_OF - 3 * D + 2 * H, AS_OF - 2 * D + 2 * H, 1, 4.0, None)
    ]


def test_purchase_at_the_same_instant_as_the_cart_converts_it(warehouse):
    assert abandonments(warehouse, "c9") == []


def test_cart_abandonments_7d_counts_abandonments_of_the_last_seven_days(warehouse):
    # c1 was abandoned 7 days 18 hours ago; c3 four days ago.
    assert metrics(warehouse, "c1")["cart_abandonments_7d"] == 0
    assert metrics(warehouse, "c3")["cart_abandonments_7d"] == 1


def test_anonymous_events_belong_to_the_user_they_were_linked_to(warehouse):
    row = metrics(warehouse, "i1")
    assert row["first_seen_at"] == AS_OF - 5 * D
    assert row["product_views_7d"] == 1
    assert query(
        warehouse, "select count(*) from marts.user_metrics where user_id = 'anon-i1'"
    ) == [(0,)]


def test_a_link_made_after_as_of_is_not_known_yet(warehouse):
    assert metrics(warehouse, "anon-i2")["product_views_7d"] == 1
    assert query(warehouse, "select count(*) from marts.user_metrics where user_id = 'i2'") == [
        (0,)
    ]


def test_the_earliest_link_wins(warehouse):
    assert metrics(warehouse, "i3a")["product_views_7d"] == 1
    assert metrics(warehouse, "i3b")["product_views_7d"] == 0


@pytest.mark.parametrize(
    "table",
    [
        "marts.user_metrics",
        "marts.cart_abandonments",
        "marts.customer_rfm",
        "intermediate.int_events_stitched",
        "intermediate.int_events_enriched",
    ],
)
def test_erased_user_disappears_from_every_mart(warehouse, table):
    found = query(
        warehouse,
        f"select count(*) from {table} where user_id in ('gone', 'anon-gone')",
    )
    assert found == [(0,)]


def test_rfm_follows_the_lifetimes_convention(warehouse):
    row = row_of(warehouse, "marts.customer_rfm", "user_id", "r1")
    # Purchase days: -40d (10 + 20), -20d (30), -10d (60).
    assert (row["frequency"], row["recency"], row["T"]) == (2, 30, 40)
    assert row["monetary_value"] == pytest.approx(45.0)  # mean of 30 and 60


def test_rfm_one_time_buyer_has_zero_frequency_and_monetary_value(warehouse):
    row = row_of(warehouse, "marts.customer_rfm", "user_id", "r2")
    assert (row["frequency"], row["recency"], row["T"], row["monetary_value"]) == (0, 0, 5, 0)


def test_rfm_scores_rank_buyers_between_one_and_five(warehouse):
    rows = query(warehouse, "select r_score, f_score, m_score, rfm_segment from marts.customer_rfm")
    assert rows and all(1 <= score <= 5 for row in rows for score in row[:3])
    r1 = row_of(warehouse, "marts.customer_rfm", "user_id", "r1")
    r2 = row_of(warehouse, "marts.customer_rfm", "user_id", "r2")
    assert r1["f_score"] == 5 and r2["f_score"] < r1["f_score"]


def test_cohorts_count_active_users_per_month_up_to_as_of(tmp_path):
    landing = tmp_path / "landing"
    write_events(
        landing,
        "events.csv",
        [
            event("k1a", "page_view", "2026-01-05T10:00:00Z", user_id="k1"),
            event("k1b", "page_view", "2026-02-10T10:00:00Z", user_id="k1"),
            event("k2a", "page_view", "2026-01-20T10:00:00Z", user_id="k2"),
            event("k3a", "page_view", "2026-02-03T10:00:00Z", user_id="k3"),
            event("k3b", "page_view", "2026-03-01T00:00:00Z", user_id="k3"),  # at as_of
            event("k4a", "page_view", "2026-03-01T00:00:01Z", user_id="k4"),  # after as_of
        ],
    )
    warehouse = tmp_path / "warehouse.duckdb"
    run(landing, warehouse)
    rows = query(
        warehouse,
        "select strftime(cohort_month, '%Y-%m'), period, cohort_size, active_users, "
        "retention_rate from marts.cohort_retention order by 1, 2",
    )
    assert rows == [
        ("2026-01", 0, 2, 2, 1.0),
        ("2026-01", 1, 2, 1, 0.5),
        ("2026-01", 2, 2, 0, 0.0),  # March: no activity, still a row
        ("2026-02", 0, 1, 1, 1.0),
        ("2026-02", 1, 1, 1, 1.0),
    ]
