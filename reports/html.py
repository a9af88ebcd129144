"""Self-contained HTML pages (styles and plots inline, no network) and deterministic SVG plots.

Plots are matplotlib SVGs with a fixed hash salt and no date, so the same data draws the
same bytes; everything is printable (A4 landscape, tables repeat their header).
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

import jinja2

_STYLE = """
body { font: 13px/1.4 system-ui, sans-serif; margin: 24px; color: #111; }
h1 { font-size: 20px; margin: 0 0 4px; } h2 { font-size: 16px; margin: 24px 0 4px; }
p.meaning { color: #333; max-width: 70em; } nav a { margin-right: 12px; }
table { border-collapse: collapse; margin: 8px 0; font-size: 11px; }
th, td { border: 1px solid #bbb; padding: 2px 6px; text-align: left; white-space: nowrap; }
th { background: #eee; } thead { display: table-header-group; }
.flag { background: #fde2e2; border: 1px solid #c62828; padding: 8px 12px; margin: 8px 0; font-weight: 600; }
.warning { background: #fff1c2; border: 1px solid #d9a400; padding: 8px 12px; margin: 8px 0; }
.ok { background: #e6f4e6; border: 1px solid #5a9a5a; padding: 8px 12px; margin: 8px 0; }
.note { color: #555; font-size: 11px; }
@media print { @page { size: A4 landscape; margin: 12mm; } body { margin: 0; } nav { display: none; }
  tr { page-break-inside: avoid; } }
"""

_PAGE = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined).from_string("""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{ title }} - {{ day }}</title><style>{{ style }}</style></head>
<body>
<nav>{% for link, label in links %}<a href="{{ link }}">{{ label }}</a>{% endfor %}</nav>
<h1>{{ title }} &mdash; {{ day }} (UTC)</h1>
<p class="meaning">{{ summary }}</p>
{% for flag in flags %}<div class="flag">{{ flag }}</div>{% endfor %}
{% for line in warnings %}<div class="warning">{{ line }}</div>{% endfor %}
{% for line in facts %}<div class="ok">{{ line }}</div>{% endfor %}
{% for plot in plots %}<figure>{{ plot | safe }}</figure>{% endfor %}
{% for table in tables %}
<h2>{{ table.name }}</h2>
<p class="meaning">{{ table.meaning }}</p>
<p class="note">{{ table.rows }} rows{% if table.rows > table.shown|length %}; the first
{{ table.shown|length }} are shown, all are in
<a href="{{ table.name }}.csv">{{ table.name }}.csv</a>{% else %}; also as
<a href="{{ table.name }}.csv">{{ table.name }}.csv</a>{% endif %}.</p>
{% if table.shown %}<table><thead><tr>{% for column in table.columns %}<th>{{ column }}</th>{% endfor %}</tr></thead>
<tbody>{% for row in table.shown %}<tr>{% for value in row %}<td>{{ value }}</td>{% endfor %}</tr>{% endfor %}
</tbody></table>{% else %}<p class="note">Nothing this day.</p>{% endif %}
{% endfor %}
</body></html>
""")

_INDEX = jinja2.Environment(autoescape=True).from_string("""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Tickwave compliance reports</title><style>{{ style }}</style></head>
<body><h1>Tickwave compliance reports</h1>
<p class="meaning">One folder per trading day (UTC). Each holds seven reports as HTML (for people) and CSV (for
machines) and a manifest.json with every file's SHA-256, chained to the previous day's manifest;
<code>tickwave report verify</code> checks them.</p>
<table><thead><tr><th>day</th><th>summary</th><th>reports</th></tr></thead><tbody>
{% for day, names in days %}<tr><td>{{ day }}</td><td><a href="{{ day }}/daily_summary.html">daily summary</a></td>
<td>{% for name in names %}<a href="{{ day }}/{{ name }}.html">{{ name }}</a> {% endfor %}</td></tr>{% endfor %}
</tbody></table></body></html>
""")


def page(
    title: str,
    day: date,
    summary: str,
    tables: Sequence[dict[str, Any]],
    links: Sequence[tuple[str, str]],
    *,
    flags: Sequence[str] = (),
    warnings: Sequence[str] = (),
    facts: Sequence[str] = (),
    plots: Sequence[str] = (),
) -> bytes:
    """Render one report page; ``tables`` hold name, meaning, rows (total), columns and shown (formatted rows).

    ``flags`` (abnormal: red) come first, then ``warnings`` (worth a look: amber), then ``facts`` (green).
    """
    return _PAGE.render(
        title=title,
        day=day.isoformat(),
        summary=summary,
        tables=tables,
        links=links,
        flags=flags,
        warnings=warnings,
        facts=facts,
        plots=plots,
        style=_STYLE,
    ).encode()


def index(days: Sequence[tuple[str, Sequence[str]]]) -> bytes:
    """Render the reports folder's index page (newest day first)."""
    return _INDEX.render(days=days, style=_STYLE).encode()


def svg_plot(kind: str, series: dict[str, tuple[Sequence[Any], Sequence[float]]], title: str, ylabel: str) -> str:
    """Draw ``series`` (label -> (x, y)) as a line, step line or grouped bar plot; return inline SVG.

    ``kind="step"`` holds each level until the next x (a running sum of events); datetime x
    values (UTC) make a time axis (HH:MM, with seconds over a span of minutes).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt

    with plt.rc_context({"svg.hashsalt": "tickwave-reports", "svg.fonttype": "none", "font.size": 9}):
        figure, axes = plt.subplots(figsize=(8, 3))
        try:
            if kind in ("line", "step"):
                for label, (xs, ys) in series.items():
                    axes.plot(
                        list(xs),
                        list(ys),
                        label=label,
                        linewidth=1.2,
                        marker=".",
                        drawstyle="steps-post" if kind == "step" else "default",
                    )
                times = [x for xs, _ in series.values() for x in xs if isinstance(x, datetime)]
                if times:  # seconds shown when the whole curve spans minutes
                    shape = "%H:%M" if max(times) - min(times) > timedelta(minutes=10) else "%H:%M:%S"
                    axes.xaxis.set_major_formatter(mdates.DateFormatter(shape, tz=UTC))  # type: ignore[no-untyped-call]
                    axes.set_xlabel("time (UTC)")
            else:
                labels = list(series)
                positions = range(len(next(iter(series.values()))[0])) if series else range(0)
                width = 0.8 / max(len(labels), 1)
                for offset, label in enumerate(labels):
                    xs, ys = series[label]
                    axes.bar([p + offset * width for p in positions], list(ys), width, label=label)
                    axes.set_xticks([p + 0.4 - width / 2 for p in positions], [str(x) for x in xs])
            axes.set_title(title)
            axes.set_ylabel(ylabel)
            axes.grid(alpha=0.3)
            if series:
                axes.legend(loc="best")
            figure.tight_layout()
            buffer = io.StringIO()
            figure.savefig(buffer, format="svg", metadata={"Date": None, "Creator": None})
        finally:
            plt.close(figure)
    text = buffer.getvalue()
    return text[text.index("<svg") :]
