"""The bench report: one self-contained ``report.html`` from ``results.json``.

:func:`write_report` draws, with matplotlib (Agg backend), and embeds as base64 PNG:

* a **rate-distortion** plot per distortion metric: nominal bits/s (log x) against the metric,
  one point per discrete tokenizer (continuous tokenizers have no bit rate and are listed under
  the plot instead);
* a **four-axis chart** per tokenizer: four bars, one per axis, each a score in [0, 1] where 1 is
  the best tokenizer of this report on that axis — rate: ``min bits/s / bits/s``; distortion:
  mel distance, ``min / value``; modelability: the probe's ratio to the entropy-coded rate,
  ``min / value`` (discrete only); streaming: ``min latency / latency`` (0 when it cannot stream).
  A missing value draws no bar (labelled "n/a").

* a **data-efficiency** plot: the headline modelability (bits/s) of each discrete tokenizer
  against the seconds of train audio its probes saw (1/8, 1/4, 1/2 and all of the train split),
  so a curve still falling at the right says the figure is not converged;

and, per tokenizer with a discrete latent, a table of every modelability estimator (unigram,
bigram, trigram, transformer), total and per codebook, naming the headline one.

It adds a sortable table (click a header; a few lines of inline JavaScript, no network) and, per
tokenizer, audio players for the example clips (original and reconstruction) embedded as base64
WAV data URIs, so the file works offline and can be moved on its own. Written atomically.
"""

from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path

from audiolatent.core.atomic import atomic_path

__all__ = ["write_report", "RD_METRICS"]

#: distortion metrics drawn against the rate, when present
RD_METRICS = ("mel_distance", "stft_distance", "si_snr", "pesq_wb", "stoi", "f0_rmse_cents")


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _rate_distortion_png(results: dict) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    toks = results["tokenizers"]
    metrics = [m for m in RD_METRICS if any(t["distortion"].get(m) is not None for t in toks.values())]
    cols = min(3, max(1, len(metrics)))
    rows = max(1, -(-len(metrics) // cols))
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.4 * rows), squeeze=False)
    for ax in axes.flat[len(metrics):]:
        ax.axis("off")
    for ax, metric in zip(axes.flat, metrics):
        for name, t in toks.items():
            bps, value = t["rate"].get("bits_per_second"), t["distortion"].get(metric)
            if bps and value is not None:
                ax.scatter([bps], [value], s=36)
                ax.annotate(name, (bps, value), fontsize=7, xytext=(3, 3), textcoords="offset points")
        ax.set_xscale("log")
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())  # minor labels overlap the major ones
        ax.set_xlabel("nominal bits/s (log)")
        ax.set_title(metric, fontsize=10)
        ax.grid(alpha=0.3)
    continuous = [n for n, t in toks.items() if not t["rate"].get("bits_per_second")]
    if continuous:
        fig.suptitle("not shown (continuous, no bit rate): " + ", ".join(continuous), fontsize=9)
    fig.tight_layout()
    return _png(fig)


def _data_efficiency_png(results: dict) -> str | None:
    """Headline bits/s against train seconds per discrete tokenizer (None: no curve to draw)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    curves = {}
    for name, t in results["tokenizers"].items():
        for stream, row in (t["modelability"].get("streams") or {}).items():
            if row.get("data_efficiency"):
                label = name if len(t["modelability"]["streams"]) == 1 else f"{name}/{stream}"
                curves[label] = (row["data_efficiency"], row["frame_rate"], row.get("converged"))
    if not curves:
        return None
    fig, ax = plt.subplots(figsize=(5.6, 3.6))
    for label, (curve, frame_rate, converged) in curves.items():
        seconds = [c["train_frames"] / frame_rate for c in curve]
        first = curve[-1]["bits_per_second"]
        relative = [c["bits_per_second"] / first for c in curve]
        ax.plot(seconds, relative, marker="o", label=f"{label} ({'converged' if converged else 'NOT converged'})")
    import matplotlib.ticker

    ax.set_xscale("log")
    ax.xaxis.set_major_locator(matplotlib.ticker.LogLocator(subs=(1.0, 2.0, 5.0)))
    ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.axhline(1.03, color="#999", lw=0.8, ls="--", label="+3 %: the convergence bound at half the data")
    ax.set_xlabel("train audio the probes saw (s, log)")
    ax.set_ylabel("headline bits/s / value with all data")
    ax.set_title("data efficiency (lower is better; flat at the right = converged)", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    return _png(fig)


def _estimator_tables(results: dict) -> list[str]:
    parts = []
    for name, t in results["tokenizers"].items():
        for stream, row in (t["modelability"].get("streams") or {}).items():
            estimators = row.get("estimators")
            if not estimators:
                continue
            n_books = len(next(iter(estimators.values()))["bits_per_second_per_codebook"])
            shown = min(n_books, 8)
            head = "".join(f"<th>cb {k}</th>" for k in range(shown)) + ("<th>...</th>" if n_books > shown else "")
            parts.append(f"<h3>{html.escape(name)} / {html.escape(stream)}</h3><table><thead><tr><th>estimator</th>"
                         f"<th>bits/s</th>{head}</tr></thead><tbody>")
            for est, v in estimators.items():
                mark = " (headline)" if est == row.get("estimator") else ""
                cells = "".join(f"<td>{_fmt(b)}</td>" for b in v["bits_per_second_per_codebook"][:shown])
                cells += "<td></td>" if n_books > shown else ""
                parts.append(f"<tr><td>{html.escape(est)}{mark}</td><td>{_fmt(v['bits_per_second'])}</td>{cells}</tr>")
            parts.append(f"</tbody></table><p>train-fitted unigram {_fmt(row.get('unigram_bits_per_second'))} bits/s, "
                         f"predictable {_fmt(row.get('predictable_bits_per_second'))} bits/s, change when the train "
                         f"data is halved {_fmt(row.get('half_data_change'))} (converged: {_fmt(row.get('converged'))}).</p>")
    return parts


def axis_scores(results: dict) -> dict[str, dict[str, float | None]]:
    """Per tokenizer, a [0, 1] score per axis (1 = best in this report); see the module docstring."""
    toks = results["tokenizers"]

    def raw(t: dict) -> dict:
        latency = t["streaming"].get("algorithmic_latency_ms")
        return {
            "rate": t["rate"].get("bits_per_second") or None,
            "distortion": t["distortion"].get("mel_distance"),
            "modelability": t["modelability"].get("ratio_to_entropy"),
            "streaming": latency if (t["streaming"].get("causal") or latency) else None,
        }

    values = {name: raw(t) for name, t in toks.items()}
    scores: dict[str, dict] = {}
    for axis in ("rate", "distortion", "modelability", "streaming"):
        present = [v[axis] for v in values.values() if v[axis] is not None and v[axis] > 0]
        best = min(present) if present else None
        for name, v in values.items():
            s = None if v[axis] is None or best is None or v[axis] <= 0 else best / v[axis]
            if axis == "streaming" and v[axis] is None and toks[name]["streaming"].get("causal") is not None:
                s = 0.0
            scores.setdefault(name, {})[axis] = s
    return scores


def _axes_png(name: str, scores: dict) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(3.4, 2.2))
    axes = list(scores)
    heights = [scores[a] if scores[a] is not None else 0 for a in axes]
    bars = ax.bar(axes, heights, color=["#4c72b0", "#dd8452", "#55a868", "#c44e52"])
    for bar, axis in zip(bars, axes):
        if scores[axis] is None:
            ax.text(bar.get_x() + bar.get_width() / 2, 0.02, "n/a", ha="center", fontsize=8)
    ax.set_ylim(0, 1.05)
    ax.set_title(name, fontsize=9)
    ax.tick_params(labelsize=7)
    return _png(fig)


def _wav_uri(path: Path) -> str | None:
    if not path.is_file():
        return None
    mime = "audio/flac" if path.suffix.lower() == ".flac" else "audio/wav"
    return f"data:{mime};base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def _fmt(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        return f"{value:.4g}"
    return html.escape(str(value))


_COLUMNS = [
    ("tokenizer", None), ("family", ("family",)), ("bits/s", ("rate", "bits_per_second")),
    ("entropy bits/s", ("rate", "entropy_bits_per_second")), ("values/s", ("rate", "values_per_second")),
    ("mel dist", ("distortion", "mel_distance")), ("STFT dist", ("distortion", "stft_distance")),
    ("SI-SNR dB", ("distortion", "si_snr")), ("PESQ-WB", ("distortion", "pesq_wb")), ("STOI", ("distortion", "stoi")),
    ("F0 cents", ("distortion", "f0_rmse_cents")), ("causal", ("streaming", "causal")),
    ("latency ms", ("streaming", "algorithmic_latency_ms")), ("probe bits/s", ("modelability", "probe_bits_per_second")),
    ("estimator", ("modelability", "estimator")), ("converged", ("modelability", "converged")),
    ("predictable bits/s", ("modelability", "predictable_bits_per_second")),
    ("probe/unigram", ("modelability", "ratio_to_entropy")), ("NLL/s", ("modelability", "nll_per_second")),
    ("pred. info nats/s", ("modelability", "predictive_nats_per_second")),
    ("R2", ("modelability", "r2")), ("Fréchet log-mel", ("modelability", "frechet_logmel")),
    ("eff. rank", ("modelability", "effective_rank")),
]

_SORT_JS = """
document.querySelectorAll('table.sortable th').forEach(function (th, col) {
  th.addEventListener('click', function () {
    var table = th.closest('table'), body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    var asc = th.dataset.order !== 'asc'; th.dataset.order = asc ? 'asc' : 'desc';
    function key(r) { var t = r.cells[col].textContent; var n = parseFloat(t); return isNaN(n) ? t : n; }
    rows.sort(function (a, b) { var x = key(a), y = key(b);
      if (typeof x !== typeof y) { return typeof x === 'number' ? -1 : 1; }
      return (x < y ? -1 : x > y ? 1 : 0) * (asc ? 1 : -1); });
    rows.forEach(function (r) { body.appendChild(r); });
  });
});
"""


def _get(row: dict, path):
    value = row
    for key in path:
        value = value.get(key) if isinstance(value, dict) else None
    return value


def write_report(results: dict, out_dir, examples: dict | None = None) -> Path:
    """Write ``out_dir/report.html`` for ``results`` (the dict of ``results.json``).

    Args:
        results: what :func:`audiolatent.bench.runner.run_bench` returned.
        out_dir: folder of the report; example paths in ``results`` are relative to it.
        examples: ``{tokenizer: [{"id", "original", "reconstruction"}, ...]}`` with paths
            relative to ``out_dir`` (default: each tokenizer's ``examples`` in ``results``).

    Returns:
        The path of ``report.html``.
    """
    out_dir = Path(out_dir)
    toks = results["tokenizers"]
    examples = examples if examples is not None else {n: t.get("examples", []) for n, t in toks.items()}
    scores = axis_scores(results)
    parts = [
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>audiolatent bench</title><style>",
        "body{font-family:sans-serif;margin:1.5em;max-width:1400px}table{border-collapse:collapse;font-size:13px}"
        "th,td{border:1px solid #ccc;padding:3px 6px;text-align:right}th{cursor:pointer;background:#f3f3f3}"
        "td:first-child,td:nth-child(2){text-align:left}.axes img{margin:4px}.clip{margin:6px 0}",
        "</style></head><body><h1>audiolatent bench</h1>",
        f"<p>{len(toks)} tokenizers; run {_fmt(results['run'].get('seconds'))} s, preset {_fmt((results['run'].get('preset') or {}).get('name'))}; "
        f"command: <code>{html.escape(str(results['run'].get('environment', {}).get('command', '')))}</code></p>",
        "<h2>Rate-distortion</h2>", f"<img alt='rate-distortion' src='data:image/png;base64,{_rate_distortion_png(results)}'>",
        "<h2>Table</h2><p>Click a column header to sort.</p><table class='sortable'><thead><tr>",
        "".join(f"<th>{html.escape(c)}</th>" for c, _ in _COLUMNS), "</tr></thead><tbody>",
    ]
    for name, row in toks.items():
        cells = [html.escape(name)] + [_fmt(_get(row, path)) for _, path in _COLUMNS[1:]]
        parts.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    parts.append("</tbody></table>")
    parts.append("<h2>Four axes</h2><p>Each bar: 1 = best tokenizer of this report on that axis (see "
                 "<code>audiolatent.bench.report</code> for the scores).</p><div class='axes'>")
    for name in toks:
        parts.append(f"<img alt='axes {html.escape(name)}' src='data:image/png;base64,{_axes_png(name, scores[name])}'>")
    parts.append("</div>")
    efficiency = _data_efficiency_png(results)
    estimator_tables = _estimator_tables(results)
    if efficiency or estimator_tables:
        parts.append("<h2>Modelability</h2><p>Held-out cross-entropy of each estimator (lower is better); the "
                     "headline is the lowest. See <code>docs/metrics.md</code>.</p>")
        if efficiency:
            parts.append(f"<img alt='data efficiency' src='data:image/png;base64,{efficiency}'>")
        parts += estimator_tables
    parts.append("<h2>Examples</h2>")
    for name in toks:
        parts.append(f"<h3>{html.escape(name)}</h3>")
        for ex in examples.get(name, []):
            orig, recon = _wav_uri(out_dir / ex["original"]), _wav_uri(out_dir / ex["reconstruction"])
            parts.append(f"<div class='clip'>{html.escape(str(ex.get('id', '')))}: original ")
            parts.append(f"<audio controls src='{orig}'></audio>" if orig else "(missing)")
            parts.append(" reconstruction ")
            parts.append(f"<audio controls src='{recon}'></audio>" if recon else "(missing)")
            parts.append("</div>")
    parts.append("<h2>Data</h2><pre>" + html.escape(json.dumps(results["data"], indent=1)) + "</pre>")
    parts.append(f"<script>{_SORT_JS}</script></body></html>")
    target = out_dir / "report.html"
    with atomic_path(target) as tmp:
        tmp.write_text("".join(parts), encoding="utf-8")
    return target
