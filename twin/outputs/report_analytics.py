"""The run report's analytics section (:mod:`twin.outputs.report`), from ``results.json``
alone: the MDC's detections scored against the injected faults (the scores of
:mod:`twin.accounting.scoring`: totals, the confusion matrix of injected kind against
detected kind with ``missed`` and the false alarms, detection delays per fault kind), the
normal events it recognised (storm cut-outs), the forecasts' realised error and skill
against their reference per horizon step (:mod:`twin.accounting.forecasts`), the
recommendations open at the end and the weather feed's stations.
"""

from __future__ import annotations

from typing import Any

from twin.accounting.scoring import FALSE_ALARM, MISSED
from twin.outputs.charts import bar_figure
from twin.outputs.page import Cell, Page, value_cell

__all__ = ["analytics_section"]

#: Most events and recommendations listed (their totals are given).
MAX_LISTED = 25
KIND_COLUMNS = (
    "fault kind", "detector", "faults", "found", "right kind", "recall",
    "delay reported, median, h", "delay reported, max, h", "delay detected, max, h",
)  # fmt: skip
FORECAST_COLUMNS = (
    "sites", "issued", "methods", "reference", "pairs", "MAE, Wh", "RMSE, Wh",
    "reference RMSE, Wh", "skill",
)  # fmt: skip


def analytics_section(page: Page, r: dict[str, Any]) -> None:
    """Append the analytics section of run ``r`` (``results.json``) to ``page``."""
    page.section("Analytics, forecasts, recommendations", "analytics")
    scores = r.get("analytics")
    if scores and (scores["faults"] or scores["detections"]):
        _scores(page, scores)
    else:
        page.paragraph("No field fault was injected and no alert was raised.", "note")
    _events(page, r.get("events", []), scores)
    _forecasts(page, r.get("forecasts", {}))
    _recommendations(page, r.get("recommendations", []), len(r.get("digests", [])))
    _weather_feed(page, r.get("weather_feed", []))


def _delay(seconds: float | None) -> Any:
    return value_cell(None if seconds is None else round(seconds / 3600.0, 2))


def _scores(page: Page, s: dict[str, Any]) -> None:
    page.table(
        ["faults", "found", "recall", "alerts", "false alarms", "precision", "right kind"],
        [
            [
                value_cell(s["faults"]),
                value_cell(s["found"]),
                value_cell(s["recall"]),
                value_cell(s["detections"]),
                value_cell(s["false_alarms"]),
                value_cell(s["precision"]),
                value_cell(s["classified_right_fraction"]),
            ]
        ],
        "analytics-totals",
    )
    confusion: dict[str, dict[str, int]] = s["confusion"]
    if confusion:
        page.subheading("Confusion matrix: injected kind (rows) against detected kind")
        detected = sorted({k for row in confusion.values() for k in row} - {MISSED})
        columns = [*detected, MISSED]
        injected = sorted(k for k in confusion if k != FALSE_ALARM)
        rows = injected + ([FALSE_ALARM] if FALSE_ALARM in confusion else [])
        page.table(
            ["injected \\ detected", *columns],
            [
                [
                    "false alarm" if kind == FALSE_ALARM else kind,
                    *(
                        Cell(
                            str(confusion[kind].get(c, 0)) if confusion[kind].get(c) else "",
                            {"data-injected": kind, "data-detected": c},
                            number=True,
                        )
                        for c in columns
                    ),
                ]
                for kind in rows
            ],
            "confusion-table",
        )
    kinds = s["kinds"]
    if kinds:
        page.subheading("Per fault kind: detection delay from the first evidence")
        page.table(
            [*KIND_COLUMNS],
            [
                [
                    k["fault_kind"],
                    k["detection_kind"],
                    value_cell(k["faults"]),
                    value_cell(k["found"]),
                    value_cell(k["classified_right"]),
                    value_cell(k["recall"]),
                    _delay(k["delay_reported_s_median"]),
                    _delay(k["delay_reported_s_max"]),
                    _delay(k["delay_detected_s_max"]),
                ]
                for k in kinds
            ],
            "analytics-table",
        )
    if s.get("no_effect"):
        page.paragraph(
            f"{len(s['no_effect'])} injected faults changed no reading and are not scored.",
            "note",
        )


def _events(page: Page, events: list[dict[str, Any]], scores: dict[str, Any] | None) -> None:
    page.subheading(f"Normal events recognised ({len(events):,})")
    if scores and scores.get("cutouts"):
        page.paragraph(
            f"Storm cut-outs in the truth: {scores['cutouts']:,}; recognised as events: "
            f"{scores['cutouts_recognised']:,}; alerts on a turbine during its cut-out: "
            f"{scores['cutout_false_alarms']:,}.",
        )
    if not events:
        page.paragraph("None.", "note")
        return
    page.table(
        ["event", "site", "from, h", "to, h", "confidence", "message"],
        [
            [
                e["kind"],
                e["series_id"],
                value_cell(round(e["start_s"] / 3600, 2)),
                value_cell(round(e["end_s"] / 3600, 2)),
                value_cell(e["confidence"]),
                e["message"],
            ]
            for e in events[:MAX_LISTED]
        ],
        "events-table",
    )


def _forecasts(page: Page, forecasts: dict[str, Any]) -> None:
    page.subheading("Forecasts: realised error and skill against the reference")
    scored = {k: f for k, f in forecasts.items() if f.get("overall") and f["overall"]["n"]}
    if not scored:
        issued = sum(f.get("issued", 0) for f in forecasts.values())
        page.paragraph(f"{issued:,} forecasts issued, none scored.", "note")
        return
    page.table(
        list(FORECAST_COLUMNS),
        [
            [
                kind,
                value_cell(f["issued"]),
                ", ".join(f["methods"]),
                ", ".join(f["references"]),
                value_cell(f["overall"]["n"]),
                value_cell(f["overall"]["mae_wh"]),
                value_cell(f["overall"]["rmse_wh"]),
                value_cell(f["overall"]["reference_rmse_wh"]),
                value_cell(f["overall"]["skill"]),
            ]
            for kind, f in scored.items()
        ],
        "forecast-table",
    )
    steps = max(len(f["by_step"]) for f in scored.values())
    page.table(
        ["sites", *(f"+{i + 1} h" for i in range(steps))],
        [[kind, *(value_cell(e["skill"]) for e in f["by_step"])] for kind, f in scored.items()],
        "forecast-skill-table",
    )
    page.figure(
        "forecast-skill",
        bar_figure(
            "Skill by horizon step (1 - RMSE / RMSE of the reference)",
            [f"+{i + 1} h" for i in range(steps)],
            {kind: [e["skill"] for e in f["by_step"]] for kind, f in scored.items()},
            "skill",
        ),
    )


def _recommendations(page: Page, recommendations: list[dict[str, Any]], digests: int) -> None:
    page.subheading(f"Recommendations open at the end ({len(recommendations):,})")
    if digests:
        page.paragraph(f"Daily fleet digests sent: {digests}.")
    if not recommendations:
        page.paragraph("None.", "note")
        return
    page.table(
        ["urgency", "kind", "site", "what to do", "energy so far, kWh", "cost so far"],
        [
            [
                Cell(x["urgency"], {"data-urgency": x["urgency"]}),
                x["kind"],
                x["site_id"],
                x["action"],
                value_cell(round(x["energy_kwh"], 3)),
                value_cell(round(x["cost"], 2)),
            ]
            for x in recommendations[:MAX_LISTED]
        ],
        "recommendations-table",
    )


def _weather_feed(page: Page, stations: list[dict[str, Any]]) -> None:
    if not stations:
        return
    page.subheading("Weather feed")
    fields = ["observations", "observations_missing", "forecast_issues", "uploads_started"]
    fields += ["uploads_acknowledged", "uploads_failed", "uploads_rejected", "values_stored"]
    page.table(
        ["station", *fields],
        [[x["station_id"], *(value_cell(x[f]) for f in fields)] for x in stations],
        "weather-feed-table",
    )
