"""The measurement marts and the report, on a hand-made landing zone run three days in a row.

Every expected figure is worked out here from the scenario: which carts were recovered and
by whom, who entered and left a segment on which run, where each user came from.
"""

from __future__ import annotations

import math
import os
from datetime import timedelta
from itertools import count
from pathlib import Path

import pytest

from orchestration.demo.generator import holdout_bucket
from tests.browser import chromium_path, visit
from tests.conftest import AS_OF, at, event, query, run, write_events, write_rows

DAY = timedelta(days=1)
HOUR = timedelta(hours=1)
RUNS = (AS_OF - 2 * DAY, AS_OF - DAY, AS_OF)
CAMPAIGN = "potentially_lost"
# The recovery window is 7 days and the abandonment window 24 hours: a cart whose last
# event is 9 days before as_of is abandoned 8 days before it, and its window has passed.
CART_AT = AS_OF - timedelta(days=20)


def users_by_group(prefix: str, segment: str, holdout: bool, how_many: int) -> list[str]:
    """The first user ids with this prefix that fall in (or out of) a segment's 10% holdout."""
    found = []
    for number in count():
        user = f"{prefix}{number}"
        if (holdout_bucket(segment, user) < 1000) == holdout:
            found.append(user)
        if len(found) == how_many:
            return found
    raise AssertionError("unreachable")


TREATED = users_by_group("t", CAMPAIGN, holdout=False, how_many=4)
HOLDOUT = users_by_group("h", CAMPAIGN, holdout=True, how_many=3)
# Recovered: three of four treated carts, one of three holdout carts.
RECOVERED = {*TREATED[:3], HOLDOUT[0]}
UNREACHABLE = "no-consent"  # a customer without email consent: in 'all' only
YOUNG = "young-cart"  # abandoned two days before as_of: its recovery window is still open
BROWSERS = users_by_group("b", "high_intent_browsers", holdout=False, how_many=2)


def cart_events() -> list[dict]:
    rows = []
    ids = count()
    for user in [*TREATED, *HOLDOUT, UNREACHABLE]:
        rows.append(
            event(
                f"c{next(ids)}",
                "add_to_cart",
                at(CART_AT - AS_OF),
                user_id=user,
                product_id="p1",
                price="10",
                quantity="1",
            )
        )
        if user in RECOVERED:
            # Bought 2 days (48 hours) after abandonment: 24 h window + 48 h after the cart.
            rows.append(
                event(
                    f"c{next(ids)}",
                    "purchase",
                    at(CART_AT - AS_OF + 3 * DAY),
                    user_id=user,
                    order_id=f"o-{user}",
                    revenue="25",
                )
            )
    rows.append(
        event(
            "young",
            "add_to_cart",
            at(-3 * DAY),
            user_id=YOUNG,
            product_id="p1",
            price="10",
            quantity="1",
        )
    )
    return rows


def browsing_events() -> list[dict]:
    """BROWSERS[0] views six products before the first run and again before the third
    (a re-entry one day after leaving, within the 3-day cooldown); BROWSERS[1] only
    before the third."""
    first, second = BROWSERS
    rows = []
    for n in range(6):
        for user, run_at in ((first, RUNS[0]), (first, RUNS[2]), (second, RUNS[2])):
            rows.append(
                event(
                    f"v-{user}-{run_at:%d}-{n}",
                    "product_view",
                    at(run_at - AS_OF - 3 * HOUR + n * timedelta(minutes=5)),
                    user_id=user,
                    product_id=f"p{n}",
                    category="books",
                )
            )
    return rows


def acquisition_events() -> list[dict]:
    """Two users whose first page view carries a utm_source and whose first product view
    says which category drew them in; one of them buys in their first month."""
    start = AS_OF - timedelta(days=40)
    return [
        event(
            "a1",
            "page_view",
            at(start - AS_OF),
            user_id="acq-1",
            properties='{"utm_source": "newsletter"}',
        ),
        event(
            "a2",
            "product_view",
            at(start - AS_OF + HOUR),
            user_id="acq-1",
            category="garden",
            product_id="g1",
        ),
        event(
            "a3",
            "purchase",
            at(start - AS_OF + 2 * HOUR),
            user_id="acq-1",
            order_id="o-acq-1",
            revenue="5",
        ),
        event(
            "a4",
            "page_view",
            at(start - AS_OF),
            user_id="acq-2",
            properties='{"utm_source": "newsletter"}',
        ),
        event(
            "a5",
            "product_view",
            at(start - AS_OF + HOUR),
            user_id="acq-2",
            category="toys",
            product_id="t1",
        ),
    ]


def customers() -> list[dict]:
    rows = []
    for user in [*TREATED, *HOLDOUT, UNREACHABLE, YOUNG, *BROWSERS]:
        rows.append(
            {
                "customer_id": user,
                "email": f"{user}@example.com",
                "phone": None,
                "signed_up_at": at(-timedelta(days=60)),
                "country": "NL",
                "consent_email": str(user != UNREACHABLE).lower(),
                "consent_sms": "false",
                "consent_push": "true",
            }
        )
    return rows


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("measurement")
    landing = root / "landing"
    write_events(landing, "events.jsonl", cart_events() + browsing_events() + acquisition_events())
    write_rows(landing / "customers" / "customers.csv", customers())
    path = root / "warehouse.duckdb"
    for run_at in RUNS:
        run(landing, path, as_of=run_at)
    return path


def uplift_row(warehouse: Path, table: str, segment: str) -> dict:
    rows = query(
        warehouse,
        f"select * exclude (segment) from marts.{table} where segment = $s",
        {"s": segment},
    )
    columns = [
        name
        for (name,) in query(
            warehouse,
            "select column_name from information_schema.columns "
            "where table_schema = 'marts' and table_name = $t and column_name <> 'segment' "
            "order by ordinal_position",
            {"t": table},
        )
    ]
    assert len(rows) == 1, rows
    return dict(zip(columns, rows[0], strict=True))


def test_campaign_carts_split_into_treated_and_holdout_with_a_wald_interval(warehouse):
    row = uplift_row(warehouse, "abandonment_uplift", CAMPAIGN)
    assert (row["treated_carts"], row["treated_recovered"]) == (4, 3)
    assert (row["holdout_carts"], row["holdout_recovered"]) == (3, 1)
    # The unreachable customer and the young cart are not in the campaign's population.
    assert row["abandoned_carts"] == 7
    p1, p0 = 3 / 4, 1 / 3
    half_width = 1.96 * math.sqrt(p1 * (1 - p1) / 4 + p0 * (1 - p0) / 3)
    assert row["uplift"] == pytest.approx(p1 - p0)
    assert row["uplift_ci_low"] == pytest.approx(p1 - p0 - half_width)
    assert row["uplift_ci_high"] == pytest.approx(p1 - p0 + half_width)


def test_all_carts_row_counts_every_cart_whose_recovery_window_has_passed(warehouse):
    row = uplift_row(warehouse, "abandonment_uplift", "all")
    assert row["abandoned_carts"] == 8  # 7 campaign carts + the unreachable one; not YOUNG
    assert row["recovered_carts"] == 4
    assert row["recovery_rate"] == pytest.approx(0.5)
    assert row["recovered_revenue"] == pytest.approx(4 * 25)
    assert row["median_hours_to_recovery"] == pytest.approx(48)
    assert row["treated_carts"] == 0 and row["uplift"] is None


def test_weekly_rows_add_up_to_the_overall_row(warehouse):
    weekly = query(
        warehouse,
        "select week_start, abandoned_carts, treated_carts, holdout_carts "
        "from marts.abandonment_recovery where segment = $s",
        {"s": CAMPAIGN},
    )
    week_of_cart = (CART_AT + DAY).date() - timedelta(days=(CART_AT + DAY).weekday())
    assert weekly == [(week_of_cart, 7, 4, 3)]


def segment_days(warehouse: Path, table: str, columns: str) -> list[tuple]:
    return query(
        warehouse,
        f"select day, {columns} from marts.{table} "
        "where segment = 'high_intent_browsers' order by day",
    )


def test_segment_sizes_follow_the_runs_day_by_day(warehouse):
    days = [run_at.date() for run_at in RUNS]
    assert segment_days(
        warehouse, "segment_sizes_daily", "members, holdout_members, exported, entered, exited"
    ) == [
        (days[0], 1, 0, 1, 1, 0),  # BROWSERS[0] enters and is exported
        (days[1], 0, 0, 0, 0, 1),  # and leaves
        # Both are in; BROWSERS[0] came back within the cooldown, so only BROWSERS[1] is
        # exported.
        (days[2], 2, 0, 1, 2, 0),
    ]


def test_trigger_activity_counts_re_entries_within_the_cooldown(warehouse):
    days = [run_at.date() for run_at in RUNS]
    assert segment_days(
        warehouse, "trigger_activity", "cooldown_days, activations, retriggered_within_cooldown"
    ) == [(days[0], 3, 1, 0), (days[1], 3, 0, 0), (days[2], 3, 2, 1)]
    share = segment_days(warehouse, "trigger_activity", "retrigger_share")
    assert share[2][1] == pytest.approx(0.5) and share[1][1] is None


def test_behavior_cohorts_by_acquisition_source_and_first_category(warehouse):
    rows = query(
        warehouse,
        "select cohort_dimension, cohort_value, cohort_size, active_users, purchasing_users "
        "from marts.cohort_behavior_retention "
        "where period = 0 and cohort_month = $month order by 1, 2",
        {"month": (AS_OF - timedelta(days=40)).date().replace(day=1)},
    )
    assert ("acquisition_source", "newsletter", 2, 2, 1) in rows
    assert ("first_category", "garden", 1, 1, 1) in rows
    assert ("first_category", "toys", 1, 1, 0) in rows


def test_the_all_cohorts_equal_marts_cohort_retention(warehouse):
    behavior = query(
        warehouse,
        "select cohort_month, period, cohort_size, active_users from "
        "marts.cohort_behavior_retention where cohort_dimension = 'all' order by 1, 2",
    )
    plain = query(
        warehouse,
        "select cohort_month, period, cohort_size, active_users from marts.cohort_retention "
        "order by 1, 2",
    )
    assert behavior == plain and behavior


@pytest.fixture(scope="module")
def report_visit(warehouse, tmp_path_factory):
    if chromium_path() is None:
        if os.environ.get("SEGMENTS_REQUIRE_BROWSER"):
            pytest.fail("chromium is required here (make browser installs it)")
        pytest.skip("chromium is not installed (make browser)")
    page = warehouse.parent / "exports" / "report.html"
    return visit(page, tmp_path_factory.mktemp("shots") / "report.png")


def test_report_loads_without_console_errors_and_every_chart_renders(report_visit):
    assert report_visit.console_errors == []
    assert report_visit.requests_outside == []
    assert set(report_visit.chart_ids) == {
        "segment-sizes",
        "cohort-retention",
        "acquisition-retention",
        f"recovery-{CAMPAIGN}",
        "calibration",
    }
    assert report_visit.charts_rendered == len(report_visit.chart_ids)


def test_report_scores_are_the_marts_figures(warehouse, report_visit):
    rows = query(warehouse, "select score, auc from marts.score_evaluation")
    assert {score for score, _ in rows} == {"churn_probability", "purchase_probability_7d"}
    for score, auc in rows:
        if auc is None:  # one outcome only in the validation week of this small landing
            assert report_visit.attributes[f"auc:{score}"] == ""
            assert report_visit.texts[f"auc:{score}"] == "n/a"
            continue
        assert float(report_visit.attributes[f"auc:{score}"]) == pytest.approx(auc, abs=1e-12)
        assert report_visit.texts[f"auc:{score}"] == f"{auc:.3f}"


def test_report_uplift_is_the_marts_figure(warehouse, report_visit):
    mart = uplift_row(warehouse, "abandonment_uplift", CAMPAIGN)["uplift"]
    assert float(report_visit.attributes[f"uplift:{CAMPAIGN}"]) == pytest.approx(mart, abs=1e-12)
    assert report_visit.texts[f"uplift:{CAMPAIGN}"] == f"{mart * 100:+.1f} pp"


def test_report_links_every_audience_file_of_the_newest_export(warehouse):
    exports = warehouse.parent / "exports"
    html = (exports / "report.html").read_text()
    newest = RUNS[-1].strftime("%Y%m%dT%H%MZ")
    for csv in sorted((exports / newest).glob("*.csv")):
        assert f'href="{newest}/{csv.name}"' in html
