"""What ``twin sweep`` and ``twin size`` print: the KPI table of a sweep, the answer of a
sizing with its KPIs and confidence intervals, and the table of candidates judged."""

from __future__ import annotations

import math
from collections.abc import Sequence

from twin.study.kpi_names import HEADLINE_KPIS
from twin.study.sizing import Candidate, SizingResult, axis_keys
from twin.study.stats import Estimate
from twin.study.sweep import SweepResult


def text_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Columns padded to their widest cell, two spaces apart."""
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows, strict=True)]
    return "\n".join(
        "  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
        for r in [header, *rows]
    )


def estimate_text(e: Estimate | None) -> str:
    """``mean ± half-width`` (4 significant digits); the mean alone without an interval."""
    if e is None or math.isnan(e.mean):
        return "-"
    if math.isnan(e.half_width):
        return f"{e.mean:.4g}"
    return f"{e.mean:.4g} ± {e.half_width:.2g}"


def interval_text(e: Estimate) -> str:
    """``mean [low, high] (n=N)``."""
    if math.isnan(e.half_width):
        return f"{e.mean:.6g} (n={e.n})"
    return f"{e.mean:.6g}  [{e.ci_low:.6g}, {e.ci_high:.6g}]  (n={e.n})"


def sweep_text(result: SweepResult, headline: Sequence[str] = HEADLINE_KPIS) -> str:
    spec = result.spec
    keys = [a.key for a in spec.axes]
    names = [k for k in headline if any(k in p.estimates for p in result.points)]
    rows = [
        [p.point.id, *(str(p.point.value(k)) for k in keys)]
        + [estimate_text(p.estimates.get(n)) for n in names]
        for p in result.points
    ]
    return (
        f"sweep of {spec.scenario_path}: {len(result.points)} points x {spec.replications} "
        f"replications, means ± 95 % CI half-width\n" + text_table(["point", *keys, *names], rows)
    )


def sizing_text(result: SizingResult) -> str:
    spec, check = result.spec, result.spec.check
    lines = [
        "SLOs: "
        + ", ".join(s.text for s in spec.slos)
        + f" at {check.confidence:.0%} confidence (fully sequential feasibility check, "
        f"Batur & Kim 2010; n0 = {check.n0}, tolerance {check.tolerance:.0%})"
    ]
    answer = result.answer
    if spec.grow is None:
        if answer is None:
            lines.append("answer: no configuration in the ranges given meets every SLO")
        else:
            cost = answer.cost
            lines.append(
                f"answer: {answer.point.label} ({answer.point.id}): {cost.total_usd:,.0f} USD "
                f"over {spec.years:g} years = hardware {cost.capex_usd:,.0f} + energy "
                f"{cost.energy_usd:,.0f} ({cost.energy_kwh:,.0f} kWh at "
                f"{spec.energy_price_per_kwh:g} USD/kWh)"
            )
    elif answer is None:
        first = result.limit.point.label if result.limit is not None else spec.grow.values[0]
        lines.append(f"answer: even {first} breaks an SLO")
    else:
        limit = result.limit
        lines.append(
            f"answer: {answer.point.label} ({answer.point.id}) meets every SLO"
            + (
                f"; {limit.point.label} ({limit.point.id}) breaks {', '.join(limit.verdict.broken)}"
                if limit is not None and limit.verdict.broken
                else f"; {limit.point.label} ({limit.point.id}) is {limit.verdict.verdict}"
                if limit is not None
                else " (the top of the range)"
            )
        )
    if answer is not None:
        shown = list(dict.fromkeys([s.kpi for s in spec.slos] + list(HEADLINE_KPIS)))
        width = max(len(k) for k in shown)
        lines += [
            f"  {k:<{width}}  {interval_text(answer.estimates[k])}"
            for k in shown
            if k in answer.estimates
        ]
    lines.append("candidates judged:")
    lines.append(candidates_table(result.candidates, axis_keys(spec), [s.kpi for s in spec.slos]))
    return "\n".join(lines)


def candidates_table(candidates: Sequence[Candidate], keys: list[str], kpis: list[str]) -> str:
    rows = [
        [
            c.point.id,
            *(str(c.point.value(k)) for k in keys),
            c.verdict.verdict + (f" ({', '.join(c.verdict.broken)})" if c.verdict.broken else ""),
            str(c.verdict.replications),
            *(estimate_text(c.estimates.get(k)) for k in kpis),
            f"{c.cost.total_usd:,.0f}",
        ]
        for c in candidates
    ]
    return text_table(["id", *keys, "verdict", "n", *kpis, "cost_usd"], rows)
