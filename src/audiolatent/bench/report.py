"""The bench report: one self-contained ``report.html`` from ``results.json``.

:func:`write_report` draws, with matplotlib (Agg canvas, no pyplot state), and embeds as base64 PNG:

* the **four axes** (:func:`four_axes_figure`): one parallel-coordinates picture of every
  tokenizer on rate (nominal bits/s, log), distortion (mel distance; PESQ-WB and STOI when
  measured), modelability (predictable fraction = 1 - headline / train unigram, discrete
  latents) and streaming (algorithmic latency ms; marker: causal or not). Each axis runs from the
  worst tokenizer of this report (bottom) to the best (top), flipped where lower is better, and
  the raw value is written beside every point. Below the scale, a band for "cannot stream"
  (whole-signal lookahead) and one for "not measured" (:func:`four_axes` computes the positions);
* **rate-distortion** (:func:`rate_distortion_figure`): nominal bits/s (log x) against each
  distortion metric, discrete tokenizers;
* **rate-modelability** (:func:`rate_modelability_figure`): the headline modelability
  (``probe_bits_per_second``) and the predictable bits/s against nominal bits/s, log-log with the
  line y = x (the headline cannot exceed the nominal rate);
* **data efficiency** (:func:`data_efficiency_figure`): the headline bits/s of each discrete
  stream against the seconds of train audio its probes saw, relative to the value with all data.

Every plot states the better direction (axis labels and a corner note); log axes get at least two
labelled ticks whatever their span (:func:`log_axis`). Tokenizers a plot cannot show are listed
under it with the reason; a missing value (None, NaN, a skipped axis, a reused row without a
section) reads "not measured" and never stops the report.

It adds a sortable table (click a header: ▲ ascending, ▼ descending; a few lines of inline
JavaScript, no network), per discrete stream a table of every modelability estimator, and per
tokenizer audio players for the example clips (base64 WAV data URIs), so the file works offline
and can be moved on its own. The page fits an 800 px window: images scale to the width and wide
tables scroll inside their box. Written atomically.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from audiolatent.core.atomic import atomic_path

__all__ = ["write_report", "RD_METRICS", "four_axes", "four_axes_figure", "rate_distortion_figure",
           "rate_modelability_figure", "data_efficiency_figure", "log_axis"]

#: distortion metrics drawn against the rate, when present
RD_METRICS = ("mel_distance", "stft_distance", "si_snr", "pesq_wb", "stoi", "f0_rmse_cents")
_METRIC_LABEL = {"mel_distance": "mel distance", "stft_distance": "STFT distance", "si_snr": "SI-SNR (dB)",
                 "pesq_wb": "PESQ-WB", "stoi": "STOI", "f0_rmse_cents": "F0 RMSE (cents)"}
_HIGHER_IS_BETTER = {"si_snr", "pesq_wb", "stoi"}
NOT_MEASURED = "not measured"
_CANNOT_Y, _MISSING_Y = -0.17, -0.34  # bands of the four-axes picture, below the [0, 1] scale


def _num(value) -> float | None:
    """A finite float, or None (None, NaN, inf, bools and strings are not numbers here)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def _sec(t: dict, key: str) -> dict:
    """A section of a tokenizer row (``rate``, ``distortion``, ...), ``{}`` when absent."""
    value = t.get(key)
    return value if isinstance(value, dict) else {}


def _si(value: float, digits: str = "g") -> str:
    """``1600 -> '1.6k'``, ``32000 -> '32k'``, ``0.5 -> '0.5'``."""
    for div, suffix in ((1e6, "M"), (1e3, "k")):
        if abs(value) >= div:
            return f"{value / div:{digits}}{suffix}"
    return f"{value:{digits}}"


def _figure(width: float, height: float, rows: int = 1, cols: int = 1):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height))
    FigureCanvasAgg(fig)
    return fig, fig.subplots(rows, cols, squeeze=False)


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    return base64.b64encode(buf.getvalue()).decode("ascii")


def log_axis(ax, which: str, values) -> None:
    """Put ``ax``'s ``which`` ('x' or 'y') axis on a log scale over ``values`` (padded ×1.3).

    Major ticks at 1, 10, 100 (over 3 decades), at 1-2-5 or at every integer multiple, the
    first of these that labels at least two ticks; two rounded values inside the range when none
    does (a single point). Labels are plain numbers with k/M suffixes, minor ticks unlabelled.
    """
    from matplotlib.ticker import FixedLocator, FuncFormatter, LogLocator, NullFormatter

    values = [v for v in map(_num, values) if v is not None and v > 0]
    if not values:
        return
    lo, hi = min(values) / 1.3, max(values) * 1.3
    getattr(ax, f"set_{which}scale")("log")
    getattr(ax, f"set_{which}lim")(lo, hi)
    axis = getattr(ax, f"{which}axis")
    choices = ((1.0,), (1.0, 2.0, 5.0), tuple(range(1, 10))) if hi / lo > 1e3 else ((1.0, 2.0, 5.0), tuple(range(1, 10)))
    for subs in choices:
        locator = LogLocator(base=10, subs=subs)
        if sum(lo <= t <= hi for t in locator.tick_values(lo, hi)) >= 2:
            break
    else:
        locator = FixedLocator(sorted({float(f"{v:.2g}") for v in (lo * 1.15, hi / 1.15)}))
    axis.set_major_locator(locator)
    axis.set_major_formatter(FuncFormatter(lambda v, _: _si(v)))
    axis.set_minor_locator(LogLocator(base=10, subs=tuple(range(2, 10))))
    axis.set_minor_formatter(NullFormatter())


def _better_corner(ax, x_lower: bool, y_lower: bool) -> None:
    """Write "better" in the corner of ``ax`` where the better tokenizers lie."""
    arrow = {(True, True): "↙", (True, False): "↖", (False, True): "↘", (False, False): "↗"}[(x_lower, y_lower)]
    ax.text(0.03 if x_lower else 0.97, 0.04 if y_lower else 0.96, f"{arrow} better", transform=ax.transAxes,
            ha="left" if x_lower else "right", va="bottom" if y_lower else "top", fontsize=8, color="#2a7a2a")


def _colors(results: dict) -> dict[str, str]:
    """One colour per tokenizer, the same in every figure."""
    return {n: f"C{i % 10}" for i, n in enumerate(results["tokenizers"])}


def _no_bits(results: dict) -> list[tuple[str, str]]:
    return [(n, "continuous latent: no bit rate") for n, t in results["tokenizers"].items()
            if _num(_sec(t, "rate").get("bits_per_second")) is None]


def rate_distortion_figure(results: dict):
    """``(Figure or None, [(tokenizer, why not plotted)])``: one panel per distortion metric."""
    toks = results["tokenizers"]
    points = {m: [(n, _num(_sec(t, "rate").get("bits_per_second")), _num(_sec(t, "distortion").get(m)))
                  for n, t in toks.items()] for m in RD_METRICS}
    points = {m: [(n, x, y) for n, x, y in p if x is not None and y is not None] for m, p in points.items()}
    points = {m: p for m, p in points.items() if p}
    if not points:
        return None, _no_bits(results)
    cols = min(3, len(points))
    rows = -(-len(points) // cols)
    fig, axes = _figure(3.1 * cols, 2.8 * rows, rows, cols)
    for ax in axes.flat[len(points):]:
        ax.axis("off")
    bits, color = [x for p in points.values() for _, x, _ in p], _colors(results)
    for ax, (metric, pts) in zip(axes.flat, points.items()):
        for n, x, y in pts:
            ax.scatter([x], [y], s=30, color=color[n])
            ax.annotate(n, (x, y), fontsize=6.5, xytext=(3, 3), textcoords="offset points")
        log_axis(ax, "x", bits)
        higher = metric in _HIGHER_IS_BETTER
        ax.set_xlabel("nominal bits/s (log, ← better)", fontsize=8)
        ax.set_ylabel(f"{_METRIC_LABEL[metric]} ({'↑' if higher else '↓'} better)", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
        _better_corner(ax, True, not higher)
    fig.tight_layout()
    return fig, _no_bits(results)


def rate_modelability_figure(results: dict):
    """``(Figure or None, [(tokenizer, why not plotted)])``: headline and predictable bits/s vs nominal."""
    skipped, points = _no_bits(results), []
    for n, t in results["tokenizers"].items():
        bps, model = _num(_sec(t, "rate").get("bits_per_second")), _sec(t, "modelability")
        head, pred = _num(model.get("probe_bits_per_second")), _num(model.get("predictable_bits_per_second"))
        if bps is None:
            continue
        if head is None:
            skipped.append((n, str(model.get("skipped") or f"modelability {NOT_MEASURED}")))
            continue
        points.append((n, bps, head, pred if pred is not None and pred > 0 else None))
        if pred is None or pred <= 0:
            skipped.append((n, f"predictable bits/s {NOT_MEASURED if pred is None else f'{pred:.3g} (<= 0, off a log axis)'}"))
    if not points:
        return None, skipped
    fig, axes = _figure(8.2, 3.7, 1, 2)
    span, color = [v for p in points for v in p[1:] if v is not None], _colors(results)
    panels = ((2, "headline (probe) bits/s (↓ better)", True),
              (3, "predictable bits/s (↑ better: the context's share)", False))
    for ax, (k, ylabel, lower) in zip(axes.flat, panels):
        for n, *p in points:
            if p[k - 1] is not None:
                ax.scatter([p[0]], [p[k - 1]], s=30, color=color[n])
                ax.annotate(n, (p[0], p[k - 1]), fontsize=6.5, xytext=(3, 3), textcoords="offset points")
        log_axis(ax, "x", span)
        log_axis(ax, "y", span)
        lim = ax.get_xlim()
        ax.plot(lim, lim, color="#999", lw=0.8, ls="--", label="y = x (the nominal rate)")
        ax.set_xlabel("nominal bits/s (log, ← better)", fontsize=8)
        ax.set_ylabel(ylabel, fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(0, 1 if lower else 0.91))  # above y = x: empty
        _better_corner(ax, True, lower)
    fig.tight_layout()
    return fig, skipped


@dataclass
class FourAxis:
    """One vertical axis of the four-axes picture: raw values per tokenizer and how to read them."""

    group: str  #: rate, distortion, modelability or streaming
    label: str
    lower_is_better: bool
    fmt: Callable[[float], str]
    raw: dict[str, float | None]  #: None: not measured (or, for names in ``cannot``, cannot stream)
    log: bool = False
    cannot: set = field(default_factory=set)
    markers: dict = field(default_factory=dict)  #: tokenizer -> matplotlib marker (default "o")

    def positions(self) -> dict[str, float]:
        """Tokenizer -> position in [0, 1], 1 = the best value of this report (absent: no value)."""
        f = math.log10 if self.log else float
        vals = {n: f(v) for n, v in self.raw.items() if v is not None and (v > 0 or not self.log)}
        if not vals:
            return {}
        lo, hi = min(vals.values()), max(vals.values())
        out = {n: 1.0 if hi == lo else (v - lo) / (hi - lo) for n, v in vals.items()}
        return {n: 1.0 - p if self.lower_is_better and hi != lo else p for n, p in out.items()}


def _predictable_fraction(model: dict) -> float | None:
    pred, uni = _num(model.get("predictable_bits_per_second")), _num(model.get("unigram_bits_per_second"))
    if pred is not None and uni:
        return pred / uni
    ratio = _num(model.get("ratio_to_entropy"))
    return None if ratio is None else 1.0 - ratio


def four_axes(results: dict) -> list[FourAxis]:
    """The axes of :func:`four_axes_figure`: rate, distortion (mel, PESQ-WB, STOI when any is
    measured), modelability (predictable fraction) and streaming (latency; causal or not)."""
    toks = results["tokenizers"]
    dist = {n: _sec(t, "distortion") for n, t in toks.items()}
    out = [FourAxis("rate", "bits/s", True, lambda v: _si(v, ".3g"), log=True,
                    raw={n: _num(_sec(t, "rate").get("bits_per_second")) for n, t in toks.items()})]
    for metric in ("mel_distance", "pesq_wb", "stoi"):
        raw = {n: _num(d.get(metric)) for n, d in dist.items()}
        if metric == "mel_distance" or any(v is not None for v in raw.values()):
            out.append(FourAxis("distortion", _METRIC_LABEL[metric], metric not in _HIGHER_IS_BETTER,
                                lambda v: f"{v:.3g}", raw))
    out.append(FourAxis("modelability", "predictable fraction", False, lambda v: f"{100 * v:.0f} %",
                        {n: _predictable_fraction(_sec(t, "modelability")) for n, t in toks.items()}))
    stream = FourAxis("streaming", "latency ms", True, lambda v: f"{v:.3g} ms", {})
    for n, t in toks.items():
        s = _sec(t, "streaming")
        stream.raw[n] = _num(s.get("algorithmic_latency_ms"))
        if s.get("causal") is not None:
            stream.markers[n] = "o" if s["causal"] else "s"
        if stream.raw[n] is None and s.get("causal") is False:
            stream.cannot.add(n)  # measured: the lookahead is the whole signal
    return out + [stream]


def _spread(ys: list[float], gap: float) -> list[float]:
    """Move sorted label heights ``ys`` apart by at least ``gap`` (a forward pass, then centred back)."""
    out = list(ys)
    for i in range(1, len(out)):
        out[i] = max(out[i], out[i - 1] + gap)
    shift = (out[-1] - ys[-1]) / 2 if out else 0.0
    return [y - shift for y in out]


def four_axes_figure(results: dict):
    """Parallel coordinates of every tokenizer on the four axes (see the module docstring), or None."""
    names, axes = list(results["tokenizers"]), four_axes(results)
    if not names:
        return None
    fig, ax = _figure(max(6.0, 1.5 * len(axes) + 1.5), 4.4)
    ax = ax[0, 0]
    color, pos, places = _colors(results), [a.positions() for a in axes], []
    for x, (a, p) in enumerate(zip(axes, pos)):  # (x, y) per tokenizer; the bands side by side
        place = {n: (x, y) for n, y in p.items()}
        for band in (_CANNOT_Y, _MISSING_Y):
            there = [n for n in names if n not in p and (n in a.cannot) == (band == _CANNOT_Y)]
            place.update({n: (x + 0.07 * (k - (len(there) - 1) / 2), band) for k, n in enumerate(there)})
        places.append(place)
    for i, name in enumerate(names):
        xs, ys = zip(*(pl[name] for pl in places))
        ax.plot(xs, [math.nan if y == _MISSING_Y else y for y in ys], color=color[name],
                ls=("-", "--", ":")[i // 10 % 3], lw=1.3, alpha=0.85, label=name)
        for a, x, y in zip(axes, xs, ys):
            m = a.markers.get(name, "o")
            ax.scatter([x], [y], s=22, marker=m, zorder=3, edgecolors=color[name],
                       facecolors="white" if m == "s" or y == _MISSING_Y else color[name])
    used = {y for pl in places for _, y in pl.values()}
    cannot_used, missing_used = _CANNOT_Y in used, _MISSING_Y in used
    for x, (a, p) in enumerate(zip(axes, pos)):
        ax.axvline(x, color="#888", lw=0.8, zorder=0)
        labelled = sorted((y, n) for n, y in p.items())
        for (y, n), ly in zip(labelled, _spread([y for y, _ in labelled], 0.07)):
            ax.text(x + 0.06, ly, a.fmt(a.raw[n]), fontsize=6.5, va="center", color=color[n])
        if a.cannot:
            ax.text(x + 0.03 + 0.035 * len(a.cannot), _CANNOT_Y, "whole signal", fontsize=6.5, va="center", color="#555")
    headers = [f"{a.group}\n{a.label}{' (log)' if a.log else ''}\n↑ better = {'lower' if a.lower_is_better else 'higher'}"
               for a in axes]
    headers[-1] += "\n● causal  □ not causal"
    ax.set_xticks(range(len(axes)), headers, fontsize=7.5)
    ax.xaxis.tick_top()
    yticks = [(1.0, "best"), (0.0, "worst")] + [(_CANNOT_Y, "cannot stream")] * cannot_used \
        + [(_MISSING_Y, NOT_MEASURED)] * missing_used
    ax.set_yticks([y for y, _ in yticks], [t for _, t in yticks], fontsize=7)
    ax.set_ylim((_MISSING_Y if missing_used else _CANNOT_Y if cannot_used else 0) - 0.1, 1.1)
    ax.set_xlim(-0.3, len(axes) - 0.35)
    ax.spines[:].set_visible(False)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.02), ncol=min(4, len(names)), fontsize=7, frameon=False)
    return fig


def data_efficiency_figure(results: dict):
    """Headline bits/s (relative to all data) against train seconds per discrete stream, or None."""
    curves = {}
    for name, t in results["tokenizers"].items():
        streams = _sec(t, "modelability").get("streams") or {}
        for stream, row in streams.items():
            curve = [c for c in row.get("data_efficiency") or []
                     if _num(c.get("bits_per_second")) and _num(c.get("train_frames"))]
            if curve and _num(row.get("frame_rate")):
                label = name if len(streams) == 1 else f"{name}/{stream}"
                curves[label] = (curve, row["frame_rate"], row.get("converged"))
    if not curves:
        return None
    fig, ax = _figure(5.6, 3.6)
    ax = ax[0, 0]
    seconds_all = []
    for label, (curve, frame_rate, converged) in curves.items():
        seconds = [c["train_frames"] / frame_rate for c in curve]
        seconds_all += seconds
        relative = [c["bits_per_second"] / curve[-1]["bits_per_second"] for c in curve]
        state = {True: "converged", False: "NOT converged"}.get(converged, f"convergence {NOT_MEASURED}")
        ax.plot(seconds, relative, marker="o", label=f"{label} ({state})")
    log_axis(ax, "x", seconds_all)
    ax.axhline(1.03, color="#999", lw=0.8, ls="--", label="+3 %: the convergence bound at half the data")
    ax.set_xlabel("train audio the probes saw (s, log)", fontsize=8)
    ax.set_ylabel("headline bits/s ÷ value with all data (↓ better)", fontsize=8)
    ax.set_title("data efficiency (lower is better; flat at the right = converged)", fontsize=9)
    ax.tick_params(labelsize=7)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    return fig


def _fmt(value) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return f"<span class='nm'>{NOT_MEASURED}</span>"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        return f"{value:.0f}" if 1e4 <= abs(value) < 1e9 else f"{value:.4g}"
    return html.escape(str(value))


def _estimator_tables(results: dict) -> list[str]:
    parts = []
    for name, t in results["tokenizers"].items():
        for stream, row in (_sec(t, "modelability").get("streams") or {}).items():
            estimators = row.get("estimators")
            if not estimators:
                continue
            n_books = max(len(v.get("bits_per_second_per_codebook") or []) for v in estimators.values())
            shown = min(n_books, 8)
            head = "".join(f"<th>cb {k}</th>" for k in range(shown)) + ("<th>...</th>" if n_books > shown else "")
            parts.append(f"<h3>{html.escape(name)} / {html.escape(stream)}</h3><div class='scroll'><table><thead>"
                         f"<tr><th>estimator</th><th>bits/s (↓ better)</th>{head}</tr></thead><tbody>")
            for est, v in estimators.items():
                mark = " (headline)" if est == row.get("estimator") else ""
                books = list(v.get("bits_per_second_per_codebook") or [])[:shown]
                cells = "".join(f"<td>{_fmt(b)}</td>" for b in books + [None] * (shown - len(books)))
                cells += "<td></td>" if n_books > shown else ""
                parts.append(f"<tr><td>{html.escape(est)}{mark}</td><td>{_fmt(v.get('bits_per_second'))}</td>{cells}</tr>")
            parts.append(f"</tbody></table></div><p>train-fitted unigram {_fmt(row.get('unigram_bits_per_second'))} bits/s, "
                         f"predictable {_fmt(row.get('predictable_bits_per_second'))} bits/s, change when the train "
                         f"data is halved {_fmt(row.get('half_data_change'))} (converged: {_fmt(row.get('converged'))}).</p>")
    return parts


def _wav_uri(path: Path) -> str | None:
    if not path.is_file():
        return None
    mime = "audio/flac" if path.suffix.lower() == ".flac" else "audio/wav"
    return f"data:{mime};base64," + base64.b64encode(path.read_bytes()).decode("ascii")


_COLUMNS = [
    ("tokenizer", None), ("family", ("family",)), ("bits/s ↓", ("rate", "bits_per_second")),
    ("entropy bits/s ↓", ("rate", "entropy_bits_per_second")), ("values/s", ("rate", "values_per_second")),
    ("mel dist ↓", ("distortion", "mel_distance")), ("STFT dist ↓", ("distortion", "stft_distance")),
    ("SI-SNR dB ↑", ("distortion", "si_snr")), ("PESQ-WB ↑", ("distortion", "pesq_wb")), ("STOI ↑", ("distortion", "stoi")),
    ("F0 cents ↓", ("distortion", "f0_rmse_cents")), ("causal", ("streaming", "causal")),
    ("latency ms ↓", ("streaming", "algorithmic_latency_ms")), ("probe bits/s ↓", ("modelability", "probe_bits_per_second")),
    ("estimator", ("modelability", "estimator")), ("converged", ("modelability", "converged")),
    ("predictable bits/s", ("modelability", "predictable_bits_per_second")),
    ("probe/unigram ↓", ("modelability", "ratio_to_entropy")), ("NLL/s ↓", ("modelability", "nll_per_second")),
    ("pred. info nats/s ↑", ("modelability", "predictive_nats_per_second")),
    ("R2 ↑", ("modelability", "r2")), ("Fréchet log-mel ↓", ("modelability", "frechet_logmel")),
    ("eff. rank", ("modelability", "effective_rank")),
]

# Click a header: sort by it (numbers first, "not measured" last), ▲ ascending / ▼ descending.
_SORT_JS = """
document.querySelectorAll('table.sortable').forEach(function (table) {
  var heads = table.tHead.rows[0].cells;
  Array.prototype.forEach.call(heads, function (th, col) {
    th.addEventListener('click', function () {
      var body = table.tBodies[0], rows = Array.prototype.slice.call(body.rows);
      var asc = th.getAttribute('aria-sort') !== 'ascending';
      Array.prototype.forEach.call(heads, function (h) {
        h.removeAttribute('aria-sort'); h.querySelector('.sort-arrow').textContent = '\\u21C5'; });
      th.setAttribute('aria-sort', asc ? 'ascending' : 'descending');
      th.querySelector('.sort-arrow').textContent = asc ? '\\u25B2' : '\\u25BC';
      function key(r) { var t = r.cells[col].textContent; var n = parseFloat(t); return isNaN(n) ? t : n; }
      rows.sort(function (a, b) { var x = key(a), y = key(b);
        if (typeof x !== typeof y) { return typeof x === 'number' ? -1 : 1; }
        return (x < y ? -1 : x > y ? 1 : 0) * (asc ? 1 : -1); });
      rows.forEach(function (r) { body.appendChild(r); });
    });
  });
});
"""

_CSS = (
    "body{font-family:sans-serif;margin:1.5em auto;padding:0 1em;max-width:1400px}"
    "img{max-width:100%;height:auto}figure{margin:1em 0}figcaption{font-size:13px;color:#333;max-width:60em}"
    ".scroll{max-width:100%;overflow-x:auto}pre{max-width:100%;overflow-x:auto}"
    "table{border-collapse:collapse;font-size:13px}th,td{border:1px solid #ccc;padding:3px 6px;text-align:right}"
    "th{cursor:pointer;background:#f3f3f3;white-space:nowrap}.sort-arrow{color:#777;margin-left:3px}"
    "td:first-child,td:nth-child(2){text-align:left}.nm{color:#999;font-size:11px}.clip{margin:6px 0}"
    "audio{max-width:100%}"
    "@media (max-width:800px){body{margin:0.5em auto;padding:0 0.5em}table{font-size:12px}h1{font-size:1.5em}}"
)


def _get(row: dict, path):
    value = row
    for key in path:
        value = value.get(key) if isinstance(value, dict) else None
    return value


def _figure_html(fig_id: str, alt: str, fig, caption: str, skipped=()) -> str:
    body = (f"<img alt='{html.escape(alt)}' src='data:image/png;base64,{_png(fig)}'>" if fig is not None
            else f"<p>Not plotted: nothing to draw ({NOT_MEASURED}).</p>")
    if skipped:
        caption += " Not plotted: " + "; ".join(f"{html.escape(n)} ({html.escape(why)})" for n, why in skipped) + "."
    return f"<figure id='{fig_id}'>{body}<figcaption>{caption}</figcaption></figure>"


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
    examples = examples if examples is not None else {n: t.get("examples") or [] for n, t in toks.items()}
    run = results.get("run") or {}
    rd_fig, rd_skipped = rate_distortion_figure(results)
    rm_fig, rm_skipped = rate_modelability_figure(results)
    parts = [
        "<!DOCTYPE html><html><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'><title>audiolatent bench</title>",
        f"<style>{_CSS}</style></head><body><h1>audiolatent bench</h1>",
        f"<p>{len(toks)} tokenizers; run {_fmt(run.get('seconds'))} s, preset {_fmt((run.get('preset') or {}).get('name'))}; "
        f"command: <code>{html.escape(str((run.get('environment') or {}).get('command', '')))}</code></p>",
        "<h2>Four axes</h2>",
        _figure_html("fig-four-axes", "four axes: rate, distortion, modelability, streaming", four_axes_figure(results),
                     "Every tokenizer on every axis; up is better on each axis (an axis where lower is better is "
                     "flipped), from the worst tokenizer of this report to the best; the raw value is beside each "
                     "point. Modelability: predictable fraction = 1 − headline / train unigram (discrete latents; "
                     "continuous ones have R² and predictive information in the table). Streaming: ● causal, "
                     "□ not causal; 'cannot stream' = the lookahead is the whole signal."),
        "<h2>Rate-distortion</h2>",
        _figure_html("fig-rate-distortion", "rate-distortion", rd_fig,
                     "Nominal bits/s against each distortion metric; ← fewer bits is better, the arrow in each "
                     "panel's corner points to the better region.", rd_skipped),
        "<h2>Rate-modelability</h2>",
        _figure_html("fig-rate-modelability", "rate-modelability", rm_fig,
                     "Left: the headline modelability (lowest held-out bits/s of the probes, ↓ better) against the "
                     "nominal rate; on or under y = x. Right: predictable bits/s (train unigram − headline, what the "
                     "context carries; ↑ better).", rm_skipped),
        "<h2>Table</h2><p>Click a column header to sort (▲ ascending, ▼ descending); ↓ / ↑ in a header: "
        "lower / higher is better.</p><div class='scroll'><table class='sortable'><thead><tr>",
        "".join(f"<th>{html.escape(c)}<span class='sort-arrow' aria-hidden='true'>⇅</span></th>" for c, _ in _COLUMNS),
        "</tr></thead><tbody>",
    ]
    for name, row in toks.items():
        cells = [html.escape(name)] + [_fmt(_get(row, path)) for _, path in _COLUMNS[1:]]
        parts.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    parts.append("</tbody></table></div>")
    efficiency, estimator_tables = data_efficiency_figure(results), _estimator_tables(results)
    if efficiency or estimator_tables:
        parts.append("<h2>Modelability</h2><p>Held-out cross-entropy of each estimator (lower is better); the "
                     "headline is the lowest. See <code>docs/metrics.md</code>.</p>")
        if efficiency is not None:
            parts.append(_figure_html("fig-data-efficiency", "data efficiency", efficiency,
                                      "Headline bits/s relative to its value with all the train data (↓ better)."))
        parts += estimator_tables
    parts.append("<h2>Examples</h2>")
    for name in toks:
        parts.append(f"<h3>{html.escape(name)}</h3>")
        for ex in examples.get(name) or []:
            orig, recon = (_wav_uri(out_dir / ex[k]) if ex.get(k) else None for k in ("original", "reconstruction"))
            parts.append(f"<div class='clip'>{html.escape(str(ex.get('id', '')))}: original ")
            parts.append(f"<audio controls src='{orig}'></audio>" if orig else "(missing)")
            parts.append(" reconstruction ")
            parts.append(f"<audio controls src='{recon}'></audio>" if recon else "(missing)")
            parts.append("</div>")
    parts.append("<h2>Data</h2><pre>" + html.escape(json.dumps(results.get("data") or {}, indent=1)) + "</pre>")
    parts.append(f"<script>{_SORT_JS}</script></body></html>")
    target = out_dir / "report.html"
    with atomic_path(target) as tmp:
        tmp.write_text("".join(parts), encoding="utf-8")
    return target
