"""One self-contained HTML page: sections of text, tables and Plotly figures, with
plotly.js inlined from the ``plotly`` package, so the page opens offline (no CDN, no
request at all). Figures travel as one JSON block drawn by ``Plotly.newPlot`` on load;
when all are drawn, ``<body data-plotted="N">`` says how many.
"""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from twin.outputs.charts import Figure

_CSS = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 0; color: #222; background: #fafafa; }
main { max-width: 1280px; margin: 0 auto; padding: 16px 24px 48px; }
h1 { font-size: 22px; margin: 8px 0 4px; } h2 { font-size: 18px; margin: 28px 0 8px;
  border-bottom: 1px solid #ddd; padding-bottom: 4px; } h3 { font-size: 15px; margin: 16px 0 6px; }
.question { font-size: 16px; color: #333; margin: 4px 0 12px; }
nav a { margin-right: 12px; font-size: 13px; }
table { border-collapse: collapse; margin: 6px 0 12px; background: #fff; font-size: 13px; }
th, td { border: 1px solid #ddd; padding: 3px 8px; text-align: left; vertical-align: top; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
th { background: #f0f0f0; }
.pass { color: #176f2c; font-weight: 600; } .fail { color: #b00020; font-weight: 600; }
.unknown { color: #8a6d00; } .note { color: #555; font-size: 13px; }
.plot { background: #fff; border: 1px solid #e4e4e4; margin: 8px 0 16px; }
pre { background: #fff; border: 1px solid #ddd; padding: 8px; overflow: auto; max-height: 480px;
  font-size: 12px; }
"""

_DRAW = """
(function () {
  var figures = JSON.parse(document.getElementById("figures").textContent);
  var ids = Object.keys(figures);
  var config = {responsive: true, displaylogo: false};
  Promise.all(ids.map(function (id) {
    return Plotly.newPlot(id, figures[id].data, figures[id].layout, config);
  })).then(function () { document.body.dataset.plotted = String(ids.length); });
})();
"""


@dataclass(frozen=True)
class Cell:
    """A table cell: its text (escaped on output), extra attributes and whether it holds a
    number (right-aligned)."""

    text: str
    attrs: dict[str, str] = field(default_factory=dict)
    number: bool = False
    css: str = ""


def number_text(value: float) -> str:
    """A number as pages show it: integers exactly, others to 6 significant digits."""
    if float(value).is_integer() and abs(value) < 1e15:
        return f"{int(value):,}"
    if abs(value) >= 1e6:
        return f"{value:,.0f}"
    return f"{value:,.6g}"


def value_cell(value: Any) -> Any:
    """A table value: numbers as :func:`number_text`, None as a dash, booleans as yes/no,
    a mapping as ``key value, ...``, the rest as text."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int | float):
        return Cell(number_text(value), number=True)
    if isinstance(value, dict):
        return ", ".join(f"{k} {v}" for k, v in value.items()) or "-"
    return str(value)


def _cell(value: Any, tag: str) -> str:
    if not isinstance(value, Cell):
        value = Cell(str(value), number=isinstance(value, int | float))
    classes = " ".join(c for c in ("num" if value.number else "", value.css) if c)
    attrs = "".join(f' {k}="{html.escape(v)}"' for k, v in value.attrs.items())
    cls = f' class="{classes}"' if classes else ""
    return f"<{tag}{cls}{attrs}>{html.escape(value.text)}</{tag}>"


class Page:
    """A page being built: call the section helpers in order, then :meth:`render`."""

    def __init__(self, title: str) -> None:
        self.title = title
        self.parts: list[str] = []
        self.sections: list[tuple[str, str]] = []
        self.figures: dict[str, Figure] = {}

    def section(self, title: str, anchor: str) -> None:
        self.sections.append((anchor, title))
        self.parts.append(f'<h2 id="{anchor}">{html.escape(title)}</h2>')

    def subheading(self, title: str) -> None:
        self.parts.append(f"<h3>{html.escape(title)}</h3>")

    def paragraph(self, text: str, css: str = "") -> None:
        cls = f' class="{css}"' if css else ""
        self.parts.append(f"<p{cls}>{html.escape(text)}</p>")

    def raw(self, markup: str) -> None:
        """Markup the caller built (and escaped) itself."""
        self.parts.append(markup)

    def table(
        self, header: Sequence[str], rows: Sequence[Sequence[Any]], table_id: str = ""
    ) -> None:
        ident = f' id="{table_id}"' if table_id else ""
        head = "".join(_cell(h, "th") for h in header)
        body = "".join("<tr>" + "".join(_cell(v, "td") for v in row) + "</tr>" for row in rows)
        self.parts.append(
            f"<table{ident}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
        )

    def figure(self, fig_id: str, figure: Figure) -> None:
        self.figures[fig_id] = figure
        self.parts.append(f'<div class="plot" id="{fig_id}"></div>')

    def preformatted(self, summary: str, text: str) -> None:
        self.parts.append(
            f"<details><summary>{html.escape(summary)}</summary>"
            f"<pre>{html.escape(text)}</pre></details>"
        )

    def render(self) -> str:
        from plotly.offline import get_plotlyjs

        nav = " ".join(f'<a href="#{a}">{html.escape(t)}</a>' for a, t in self.sections)
        figures = json.dumps(self.figures, separators=(",", ":"), allow_nan=False)
        return "\n".join(
            [
                "<!DOCTYPE html>",
                '<html lang="en"><head><meta charset="utf-8">',
                '<meta name="viewport" content="width=device-width, initial-scale=1">',
                f"<title>{html.escape(self.title)}</title>",
                f"<style>{_CSS}</style>",
                f"<script>{get_plotlyjs()}</script>",
                "</head><body><main>",
                f"<nav>{nav}</nav>",
                *self.parts,
                "</main>",
                '<script type="application/json" id="figures">'
                + figures.replace("</", "<\\/")
                + "</script>",
                f"<script>{_DRAW}</script>",
                "</body></html>",
                "",
            ]
        )
