"""One self-contained HTML report (CSS, script and PNG charts inline) plus its Markdown summary.

The page makes no request: charts are ``data:`` URIs, and a Content-Security-Policy allows only
inline styles, ``data:`` images and the one inline script by its SHA-256 hash, so even a
string that escaped escaping could not load or run anything. Every user-supplied string
(recipe names, config, versions) goes through Jinja2's autoescape.

Example:
    >>> import pandas as pd, tempfile, pathlib
    >>> from reglab.report.aggregate import StudyData
    >>> t = pd.DataFrame({"trial_id": [0, 1], "recipe": ["none", "l2"], "seed": [0, 0]})
    >>> e = pd.DataFrame({"trial_id": [0, 1], "epoch": [0, 0], "train_loss": [1.0, 1.0],
    ...                   "val_loss": [1.0, 1.1]})
    >>> r = pd.DataFrame({"trial_id": [0, 1], "test_accuracy": [0.6, 0.7]})
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "report.html"
    >>> html_path, md_path = write_report(StudyData("s", t, e, r), out)
    >>> md_path.name
    'report.md'
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
from pathlib import Path

import jinja2

from reglab.errors import UserError
from reglab.report import plots
from reglab.report.aggregate import StudyData
from reglab.report.summary import markdown_summary, ranking_rows
from reglab.study.schema import metric_range

__all__ = ["render_html", "write_report"]

# Click a ranking header to sort by it (numbers compare as numbers).
_SCRIPT = """
document.querySelectorAll("table.sortable th").forEach(function (th, col) {
  th.addEventListener("click", function () {
    var body = th.closest("table").tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    var asc = th.dataset.dir !== "asc";
    th.dataset.dir = asc ? "asc" : "desc";
    rows.sort(function (a, b) {
      var x = a.cells[col].textContent, y = b.cells[col].textContent;
      var nx = parseFloat(x), ny = parseFloat(y);
      var c = (isNaN(nx) || isNaN(ny)) ? x.localeCompare(y) : nx - ny;
      return asc ? c : -c;
    });
    rows.forEach(function (r) { body.appendChild(r); });
  });
});
"""

_CSS = """
body { font: 15px/1.45 system-ui, sans-serif; margin: 0 auto; max-width: 1180px; padding: 0 16px 40px;
       color: #1a1a1a; background: #fff; }
h1 { font-size: 1.6em; margin-top: 20px; } h2 { font-size: 1.2em; border-bottom: 1px solid #ccc;
  padding-bottom: 3px; margin-top: 28px; }
table { border-collapse: collapse; margin: 8px 0; font-size: 0.92em; }
th, td { border: 1px solid #bbb; padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: #eef3f8; } table.sortable th { cursor: pointer; }
tr:nth-child(even) td { background: #f7f7f7; }
figure { margin: 8px 0; } figure img { max-width: 100%; height: auto; border: 1px solid #ddd; }
figcaption, .note { color: #444; font-size: 0.9em; }
pre { background: #f4f4f4; padding: 8px; overflow-x: auto; font-size: 0.85em; }
nav a { margin-right: 12px; } code { background: #f4f4f4; padding: 0 3px; }
"""

_TEMPLATE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy"
 content="default-src 'none'; img-src data:; style-src 'unsafe-inline'; script-src '{{ script_hash }}'">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>reglab report: {{ data.name }}</title>
<style>{{ css }}</style></head>
<body>
<h1>reglab report: {{ data.name }}</h1>
<nav><a href="#ranking">Ranking</a>
{% for id, title, chart in sections if chart %}<a href="#{{ id }}">{{ title }}</a>{% endfor %}
<a href="#selection">What was regularized</a><a href="#reproduce">Reproduce</a></nav>
<h2 id="ranking">Ranking</h2>
<p class="note">By <code>{{ data.metric }}</code>
({{ "higher" if data.higher_is_better else "lower" }} is better), best first,
mean ± {{ "%.0f" % (confidence * 100) }}% Student-t interval over trials, {{ clip }}.
{% if data.baseline %}Δ is the mean paired difference against <code>{{ data.baseline }}</code>
(same seed{% if has_fold %} and fold{% endif %}) with its interval and paired t-test p-value.
{% if data.baseline in data.unfinished %}The baseline has no result, so no recipe has a Δ.{% endif %}
{% endif %}
{% if data.unfinished %}Recipes with no result (no finished final trial) are listed last, without a rank.
{% endif %}The diagnosis column is <code>reglab diagnose</code> on each recipe's mean curves, over the epochs
all its trials reached (- for fewer than 5).
The charts list recipes in this order, labelled with their rank. Click a header to sort.</p>
<table class="sortable" id="ranking-table"><thead><tr><th>#</th><th>recipe</th><th>n</th><th>mean ± CI</th>
<th>CI</th><th>Δ vs baseline [CI]</th><th>diagnosis</th></tr></thead><tbody>
{% for r in rows %}<tr><td>{{ r.rank }}</td><td>{{ r.recipe }}</td><td>{{ r.n }}</td><td>{{ r.mean }}</td>
<td>{{ r.ci }}</td><td>{{ r.diff }}</td><td>{{ r.diagnosis }}</td></tr>
{% endfor %}</tbody></table>
{% for id, title, chart in sections if chart %}
<h2 id="{{ id }}">{{ title }}</h2>
<figure><img class="chart" src="{{ chart.uri }}" alt="{{ title }}">
<figcaption>{{ chart.caption }}</figcaption></figure>
{% endfor %}
{% for id, title, chart in sections if not chart %}
{% if loop.first %}<h2 id="absent">Not in this study</h2><ul>{% endif %}
<li>{{ title }}: the study holds no data for it.</li>
{% if loop.last %}</ul>{% endif %}{% endfor %}
<h2 id="selection">What was regularized</h2>
{% if selection %}<table><thead><tr>
{% for c in selection.columns %}<th>{{ c }}</th>{% endfor %}</tr></thead><tbody>
{% for row in selection.rows %}<tr>{% for v in row %}<td>{{ v }}</td>{% endfor %}</tr>
{% endfor %}</tbody></table>
{% else %}<p class="note">The study did not record which tensors were regularized.</p>{% endif %}
<h2 id="reproduce">Reproduce</h2>
<p>Seeds: {{ seeds | join(", ") }}</p>
{% if data.versions %}<table><thead><tr><th>package</th><th>version</th></tr></thead><tbody>
{% for k, v in data.versions.items() %}<tr><td>{{ k }}</td><td>{{ v }}</td></tr>{% endfor %}
</tbody></table>{% endif %}
<pre>{{ config }}</pre>
<script>{{ script | safe }}</script>
</body></html>
"""

_CAPTIONS = {
    "curves": "Mean over each recipe's trials, drawn over the epochs all of them reached: a trial that "
    "stopped early ends the mean there (past it, a mean of the trials left would jump as each one stops). "
    "Solid blue: training loss; dashed vermillion: validation loss; grey: the gap; dotted black: the best "
    "(early-stopping) epoch, averaged over trials. Where trials stopped at different epochs, thin faint "
    "lines draw each trial on its own, to its last epoch.",
    "gap": "Validation minus training loss at the last epoch: bar = mean, dots = trials.",
    "paths": "Mean over trials at each strength; log x axis. Exact zeros come from proximal updates.",
    "weights": "Final weights of one trial per recipe, shared bins, log counts.",
    "norms": "Mean loss per epoch of the baseline (no normalization layer) and of each recipe with BatchNorm "
    "or LayerNorm, labelled with its rank (log y axis), over the epochs all of a line's trials reached.",
}


def _clip_note(metric: str) -> str:
    """How the ranking's intervals are clipped, for this study's metric (an MSE's is not an accuracy's).

    Example:
        >>> print(_clip_note("test_accuracy"))
        clipped to test_accuracy's range [0, 1] (-low/+high when clipped)
        >>> print(_clip_note("test_mse"))
        clipped to test_mse's range ≥ 0 (-low/+high when clipped)
    """
    low, high = metric_range(metric)
    if math.isinf(low) and math.isinf(high):
        return f"not clipped ({metric} has no bounded range)"
    shown = "≥ 0" if math.isinf(high) else f"[{low:g}, {high:g}]"
    return f"clipped to {metric}'s range {shown} (-low/+high when clipped)"


def render_html(data: StudyData, *, confidence: float = 0.95) -> str:
    """Render the report page as one HTML string (see the module docstring)."""
    charts = [
        ("curves", "Learning curves", plots.learning_curves),
        ("gap", "Generalization gap", plots.generalization_gap),
        ("paths", "Regularization paths", plots.regularization_paths),
        ("weights", "Weight histograms", plots.weight_histograms),
        ("norms", "Convergence with and without normalization", plots.convergence_by_norm),
    ]
    sections = []
    for key, title, make in charts:
        fig = make(data)
        chart = None if fig is None else {"uri": plots.to_data_uri(fig), "caption": _CAPTIONS[key]}
        if chart is not None and key == "curves":
            shown, left_out = plots.curve_recipes(data)
            if left_out:
                base = f" and the baseline {data.baseline}" if data.baseline in shown[-1:] else ""
                chart["caption"] += (
                    f" {len(shown)} of {len(shown) + len(left_out)} recipes drawn: the best "
                    f"{len(shown) - bool(base)}{base}; not drawn: {', '.join(left_out)}."
                )
        sections.append((key, title, chart))
    selection = None
    if data.selection is not None and not data.selection.empty:
        selection = {
            "columns": list(map(str, data.selection.columns)),
            "rows": [list(map(str, r)) for r in data.selection.itertuples(index=False)],
        }
    digest = base64.b64encode(hashlib.sha256(_SCRIPT.encode()).digest()).decode()
    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    return env.from_string(_TEMPLATE).render(
        data=data,
        rows=ranking_rows(data, confidence=confidence),
        confidence=confidence,
        clip=_clip_note(data.metric),
        # Final trials all have fold -1: they pair by seed alone.
        has_fold="fold" in data.trials.columns and data.trials["fold"].nunique() > 1,
        sections=sections,
        selection=selection,
        seeds=sorted({int(s) for s in data.trials["seed"]}),
        config=json.dumps(data.config, indent=2, sort_keys=True, default=str),
        css=jinja2.utils.markupsafe.Markup(_CSS),
        script=_SCRIPT,
        script_hash=f"sha256-{digest}",
    )


def write_report(data: StudyData, out: str | Path, *, confidence: float = 0.95) -> tuple[Path, Path]:
    """Write ``out`` (HTML) and the Markdown summary next to it (same name, ``.md``).

    An earlier report at either path is replaced; any other existing file there is refused
    (``UserError``), so ``--out README.html`` cannot overwrite ``README.md``.

    Returns:
        ``(html_path, markdown_path)``.
    """
    out = Path(out)
    if out.suffix.lower() not in (".html", ".htm"):
        raise UserError(f"report output {out} must end in .html; pass --out NAME.html.")
    md = out.with_suffix(".md")
    for path, mark in ((out, "<title>reglab report: "), (md, "# Study report: ")):
        if not _replaceable(path, mark):
            raise UserError(f"{str(path)!r} exists and is not a reglab report, so it is left as it is; "
                            "pass another --out NAME.html (the Markdown summary goes to NAME.md)")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(render_html(data, confidence=confidence), encoding="utf-8")
        md.write_text(markdown_summary(data, confidence=confidence), encoding="utf-8")
    except OSError as exc:
        raise UserError(
            f"cannot write the report to {out} ({exc.strerror}); pick a writable --out path."
        ) from None
    return out, md


def _replaceable(path: Path, mark: str) -> bool:
    """Whether ``path`` is free to write: missing, empty, or a report reglab wrote (``mark`` near its top)."""
    try:
        if not path.is_file():
            return not path.exists()  # a folder (or other non-file) there cannot be written either
        with path.open("rb") as f:
            head = f.read(4096)
    except OSError:
        return True  # writing it reports the error
    return not head or mark.encode() in head
