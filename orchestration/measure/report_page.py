"""The static HTML report: <exports>/report.html, one file that opens from disk.

It shows the newest export (sizes and download links), segment sizes over time, cohort
retention and cart recovery against the holdout, all read from the measurement marts, so
every figure on the page is a figure a dashboard reading the same tables would show.
Charts are Plotly figures; plotly.js is inlined once, so the page needs no server and no
network. The same marts and export give the same bytes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import duckdb
import pandas as pd
import plotly.graph_objects as go
from jinja2 import Environment, PackageLoader, select_autoescape
from plotly.offline import get_plotlyjs

from orchestration.activate.audience_files import complete_exports, stamp, write_atomically
from orchestration.predict.score_marts import read_validation

REPORT_NAME = "report.html"
# Colours that stay apart for the colour-blind (Okabe-Ito): treated, holdout.
TREATED, HOLDOUT = "#0072B2", "#E69F00"
_PLOT_CONFIG = {"displaylogo": False, "responsive": True}

_templates = Environment(
    loader=PackageLoader("orchestration.measure", "templates"),
    autoescape=select_autoescape(["html"]),
    keep_trailing_newline=True,
)


@dataclass(frozen=True)
class ReportResult:
    path: Path
    export_id: str
    charts: int
    campaigns: dict[str, dict[str, float | int | None]]
    scores: dict[str, dict[str, float | int | str | None]]


def _frame(conn: duckdb.DuckDBPyConnection, query: str) -> pd.DataFrame:
    return conn.execute(query).df()


def _figure_html(figure: go.Figure, div_id: str, height: int = 380) -> str:
    figure.update_layout(
        height=height,
        margin={"l": 60, "r": 20, "t": 50, "b": 50},
        template="plotly_white",
        font={"family": "system-ui, sans-serif", "size": 13},
        legend={"orientation": "h", "y": -0.2},
    )
    return figure.to_html(
        full_html=False, include_plotlyjs=False, div_id=div_id, config=_PLOT_CONFIG
    )


def _segment_sizes_chart(sizes: pd.DataFrame) -> str:
    figure = go.Figure()
    for segment, rows in sizes.groupby("segment", sort=True):
        figure.add_trace(
            go.Scatter(
                x=rows["day"].dt.strftime("%Y-%m-%d"),
                y=rows["members"],
                mode="lines+markers",
                name=segment,
            )
        )
    figure.update_layout(
        title="Members per segment, end of day", xaxis_title="day", yaxis_title="members"
    )
    figure.update_xaxes(tickformat="%b %d", dtick=86_400_000)
    return _figure_html(figure, "segment-sizes", height=460)


def _retention_heatmap(cohorts: pd.DataFrame) -> str:
    table = cohorts.pivot(index="cohort_month", columns="period", values="retention_rate")
    table = table.sort_index()
    labels = [month.strftime("%Y-%m") for month in table.index]
    sizes = cohorts.groupby("cohort_month")["cohort_size"].first().reindex(table.index)
    figure = go.Figure(
        go.Heatmap(
            z=table.to_numpy(),
            x=[f"month {int(period)}" for period in table.columns],
            y=[f"{label} ({int(size):,} users)" for label, size in zip(labels, sizes, strict=True)],
            colorscale="Blues",
            zmin=0,
            zmax=1,
            texttemplate="%{z:.0%}",
            hovertemplate="%{y}, %{x}: %{z:.1%} active<extra></extra>",
            colorbar={"title": "active", "tickformat": ".0%"},
        )
    )
    figure.update_layout(title="Share of each monthly cohort active, by months since first visit")
    figure.update_yaxes(autorange="reversed")
    return _figure_html(figure, "cohort-retention", height=120 + 40 * len(labels))


def _source_retention_chart(cohorts: pd.DataFrame) -> str:
    # Period 1 of every cohort that has one: who comes back the month after they arrived.
    first_month = cohorts[cohorts["period"] == 1]
    totals = first_month.groupby("cohort_value")[
        ["cohort_size", "active_users", "purchasing_users"]
    ].sum()
    totals = totals.sort_index()
    figure = go.Figure()
    for column, name, colour in (
        ("active_users", "came back", TREATED),
        ("purchasing_users", "bought", HOLDOUT),
    ):
        figure.add_trace(
            go.Bar(
                x=list(totals.index),
                y=totals[column] / totals["cohort_size"],
                name=name,
                marker_color=colour,
                hovertemplate="%{x}: %{y:.1%}<extra>" + name + "</extra>",
            )
        )
    figure.update_layout(
        title="The month after arrival, by acquisition source",
        yaxis={"tickformat": ".0%", "title": "share of cohort"},
        barmode="group",
    )
    return _figure_html(figure, "acquisition-retention")


def _recovery_chart(weekly: pd.DataFrame, segment: str) -> str:
    weeks = weekly["week_start"].dt.strftime("%Y-%m-%d")
    figure = go.Figure()
    for column, carts, name, colour in (
        ("treated_recovery_rate", "treated_carts", "treated", TREATED),
        ("holdout_recovery_rate", "holdout_carts", "holdout", HOLDOUT),
    ):
        figure.add_trace(
            go.Scatter(
                x=weeks,
                y=weekly[column],
                customdata=weekly[carts],
                mode="lines+markers",
                name=name,
                line={"color": colour},
                hovertemplate="week of %{x}: %{y:.1%} of %{customdata} carts<extra>"
                + name
                + "</extra>",
            )
        )
    figure.update_layout(
        title=f"{segment}: share of abandoned carts recovered, treated vs holdout",
        xaxis_title="week of abandonment",
        yaxis={"tickformat": ".0%", "title": "recovered", "rangemode": "tozero"},
    )
    return _figure_html(figure, f"recovery-{segment}")


def _calibration_chart(calibration: pd.DataFrame) -> str:
    """Mean predicted probability against the observed rate per bin, for each score: on the
    diagonal, a score means what it says."""
    figure = go.Figure()
    figure.add_trace(
        go.Scatter(
            x=[0, 1],
            y=[0, 1],
            mode="lines",
            name="perfect calibration",
            line={"color": "#999999", "dash": "dot"},
        )
    )
    for score, colour in zip(
        sorted(calibration["score"].unique()), (TREATED, HOLDOUT), strict=False
    ):
        rows = calibration[calibration["score"] == score]
        figure.add_trace(
            go.Scatter(
                x=rows["mean_predicted"],
                y=rows["observed_rate"],
                mode="lines+markers",
                name=score,
                line={"color": colour},
                customdata=rows["users"],
                hovertemplate="predicted %{x:.2f}, observed %{y:.2f} (%{customdata:,} users)",
            )
        )
    figure.update_layout(
        title="Calibration on the validation week",
        xaxis={"title": "mean predicted probability", "range": [0, 1]},
        yaxis={"title": "observed rate", "range": [0, 1]},
    )
    return _figure_html(figure, "calibration")


def _latest_audiences(exports_dir: Path, export_id: str) -> list[dict]:
    manifest = json.loads((exports_dir / export_id / "manifest.json").read_text())
    files = manifest["files"]
    channels = {name: entry["channel"] for name, entry in manifest["segments"].items()}
    rows = []
    for name in sorted(files):
        if name.endswith((".added.csv", ".removed.csv")):
            continue
        segment = name.removesuffix(".csv")
        rows.append(
            {
                "segment": segment,
                "channel": channels.get(segment, ""),
                "rows": files[name]["rows"],
                "added": files.get(f"{segment}.added.csv", {}).get("rows", 0),
                "removed": files.get(f"{segment}.removed.csv", {}).get("rows", 0),
                "href": f"{export_id}/{name}",
                "added_href": f"{export_id}/{segment}.added.csv",
                "removed_href": f"{export_id}/{segment}.removed.csv",
            }
        )
    return rows


def _records(frame: pd.DataFrame) -> list[dict]:
    return [
        {key: (None if pd.isna(value) else value) for key, value in row.items()}
        for row in frame.to_dict("records")
    ]


def write_audience_report(
    conn: duckdb.DuckDBPyConnection,
    exports_dir: Path,
    as_of: datetime,
) -> ReportResult | None:
    """Writes <exports>/report.html from the marts as of the run's as_of, or returns None
    when a newer export exists (a backfill does not replace the newest report)."""
    exports = complete_exports(exports_dir)
    export_id = stamp(as_of)
    if not exports or exports[-1] != export_id:
        return None

    audiences = _latest_audiences(exports_dir, export_id)
    members = dict(
        conn.execute(
            "select segment, count(*) from marts.audience_members group by segment"
        ).fetchall()
    )
    for row in audiences:
        row["members"] = int(members.get(row["segment"], 0))

    sizes = _frame(conn, "select * from marts.segment_sizes_daily order by segment, day")
    sizes["day"] = pd.to_datetime(sizes["day"])
    cohorts = _frame(
        conn,
        "select * from marts.cohort_behavior_retention "
        "where cohort_dimension = 'all' order by cohort_month, period",
    )
    cohorts["cohort_month"] = pd.to_datetime(cohorts["cohort_month"])
    by_source = _frame(
        conn,
        "select * from marts.cohort_behavior_retention "
        "where cohort_dimension = 'acquisition_source' order by cohort_value, cohort_month",
    )
    uplift = _frame(conn, "select * from marts.abandonment_uplift order by segment")
    weekly = _frame(conn, "select * from marts.abandonment_recovery order by segment, week_start")
    weekly["week_start"] = pd.to_datetime(weekly["week_start"])

    validation = read_validation(conn)
    evaluation, calibration = validation if validation else (pd.DataFrame(), pd.DataFrame())
    overall = uplift[uplift["segment"] == "all"]
    campaigns = uplift[uplift["segment"] != "all"]
    charts = {
        "segment_sizes": _segment_sizes_chart(sizes) if not sizes.empty else "",
        "retention": _retention_heatmap(cohorts) if not cohorts.empty else "",
        "acquisition": _source_retention_chart(by_source) if not by_source.empty else "",
        "calibration": _calibration_chart(calibration) if not calibration.empty else "",
    }
    scores = _records(evaluation)
    recovery = []
    for campaign in _records(campaigns):
        rows = weekly[weekly["segment"] == campaign["segment"]]
        recovery.append(
            {**campaign, "chart": _recovery_chart(rows, campaign["segment"]) if len(rows) else ""}
        )

    html = _templates.get_template("report.html.j2").render(
        as_of=as_of.strftime("%Y-%m-%d %H:%M UTC"),
        export_id=export_id,
        audiences=audiences,
        exported_total=sum(row["rows"] for row in audiences),
        overall=_records(overall)[0] if len(overall) else None,
        recovery=recovery,
        charts=charts,
        scores=scores,
        plotly_js=get_plotlyjs(),
        size_days=sizes["day"].nunique(),
    )
    path = exports_dir / REPORT_NAME
    write_atomically(path, html.encode("utf-8"))
    return ReportResult(
        path=path,
        export_id=export_id,
        charts=sum(1 for chart in charts.values() if chart)
        + sum(1 for item in recovery if item["chart"]),
        campaigns={
            item["segment"]: {
                key: item[key]
                for key in (
                    "uplift",
                    "uplift_ci_low",
                    "uplift_ci_high",
                    "treated_recovery_rate",
                    "holdout_recovery_rate",
                    "treated_carts",
                    "holdout_carts",
                )
            }
            for item in recovery
        },
        scores={
            row["score"]: {
                **{
                    key: None if row[key] is None else float(row[key])
                    for key in ("auc", "brier", "validation_base_rate")
                },
                "validation_instant": str(row["validation_instant"] or ""),
                "validation_rows": int(row["validation_rows"]),
                "model_version": str(row["model_version"]),
            }
            for row in scores
        },
    )
