"""report.html: the four-axes, rate-distortion and rate-modelability figures, the sortable table and
audio players, self-contained, usable at 800 px; rendered by Chromium when present."""

from __future__ import annotations

import copy
import json
import math
import re
import subprocess
from pathlib import Path

import pytest
import torch

from audiolatent.bench.report import (
    NOT_MEASURED, four_axes, four_axes_figure, log_axis, rate_distortion_figure, rate_modelability_figure,
    write_report,
)
from audiolatent.core.audio import save_audio


def _row(bps, mel, latency, ratio, family="neural"):
    return {
        "family": family, "config": {}, "config_hash": "x",
        "rate": {"bits_per_second": bps, "entropy_bits_per_second": bps and 0.8 * bps, "values_per_second": 100.0},
        "distortion": {"mel_distance": mel, "pesq_wb": 2.0 + 1000 / (bps or 8000), "stoi": 0.9, "si_snr": 1.0},
        "streaming": {"causal": latency is not None, "algorithmic_latency_ms": latency},
        "modelability": {"probe_bits_per_second": ratio * bps if ratio and bps else None, "ratio_to_entropy": ratio,
                         "unigram_bits_per_second": 0.9 * bps if ratio and bps else None,
                         "predictable_bits_per_second": (0.9 - ratio) * bps if ratio and bps else None},
        "examples": [{"id": "clip", "original": "examples/a.wav", "reconstruction": "examples/a.wav"}],
    }


@pytest.fixture
def results():
    return {
        "tokenizers": {"a-6k": _row(6000, 0.5, 26.5, None, "classical"), "b-1k": _row(1500, 0.8, 20.0, 0.7),
                       "c-mel": _row(None, 0.2, None, None, "handcrafted")},
        "data": {"speech": {"splits": {"test": {"files": 1, "seconds": 1.0}}}},
        "run": {"seconds": 1.0, "quick": True, "environment": {"command": "audiolatent bench --quick"}},
    }


def _texts(fig) -> list[str]:
    """Every string drawn in ``fig``: titles, axis labels, tick labels, annotations, legends."""
    fig.canvas.draw()
    return [t.get_text() for t in fig.findobj(lambda a: hasattr(a, "get_text")) if t.get_text()]


def _labelled_ticks(ax, which: str) -> list[str]:
    axis, (lo, hi) = getattr(ax, f"{which}axis"), getattr(ax, f"get_{which}lim")()
    ticks = [t for t in axis.get_major_locator()() if lo <= t <= hi]
    return [s for s in axis.get_major_formatter().format_ticks(ticks) if s]


def test_report_has_figures_table_and_players(results, tmp_path):
    save_audio(tmp_path / "examples" / "a.wav", 0.1 * torch.randn(1, 1600), 16000)
    text = write_report(results, tmp_path).read_text()
    for fig_id in ("fig-four-axes", "fig-rate-distortion", "fig-rate-modelability"):
        assert re.search(rf"<figure id='{fig_id}'><img alt='[^']+' src='data:image/png;base64,", text), fig_id
    assert len(re.findall(r"<img[^>]+src='data:image/png;base64,", text)) == 3  # no data-efficiency curve here
    assert text.count("<audio controls src='data:audio/wav;base64,") == 6
    assert "↓ better" in text and "↑ better" in text
    assert "c-mel (continuous latent: no bit rate)" in text  # listed under the rate plots, not drawn
    assert "a-6k (modelability not measured)" in text
    assert "http://" not in text and "https://" not in text  # offline: nothing fetched


def test_table_is_sortable_with_an_indicator(results, tmp_path):
    text = write_report(results, tmp_path).read_text()
    heads = re.findall(r"<th>[^<]*<span class='sort-arrow' aria-hidden='true'>⇅</span></th>", text)
    assert len(heads) == 23 and "class='sortable'" in text
    assert "aria-sort" in text and "\\u25B2" in text and "\\u25BC" in text  # ▲ / ▼ set by the click handler


def test_css_fits_800_px(results, tmp_path):
    text = write_report(results, tmp_path).read_text()
    assert "name='viewport'" in text and "@media (max-width:800px)" in text
    assert "img{max-width:100%;height:auto}" in text and ".scroll{max-width:100%;overflow-x:auto}" in text
    assert "<div class='scroll'><table class='sortable'>" in text


def test_every_figure_says_which_way_is_better(results):
    for fig in (four_axes_figure(results), rate_distortion_figure(results)[0], rate_modelability_figure(results)[0]):
        for ax in fig.axes:
            if ax.axison:
                assert any("better" in s for s in _texts(ax.figure)), ax
        assert sum("better" in s for s in _texts(fig)) >= len([a for a in fig.axes if a.axison])


@pytest.mark.parametrize("values", [(1500.0, 6000.0), (1600.0,), (1000.0, 1100.0), (100.0, 1e6)])
def test_log_axes_have_two_labelled_ticks_whatever_the_span(values):
    from matplotlib.figure import Figure

    ax = Figure().subplots()
    log_axis(ax, "x", values)
    labels = _labelled_ticks(ax, "x")
    assert len(labels) >= 2 and all(re.fullmatch(r"[0-9.]+[kM]?", s) for s in labels), labels


def test_rate_plots_label_sub_decade_spans(results):
    fig, _ = rate_distortion_figure(results)  # 1500 .. 6000 bits/s: less than a decade
    assert all(len(_labelled_ticks(ax, "x")) >= 2 for ax in fig.axes if ax.axison)
    fig, skipped = rate_modelability_figure(results)
    assert [len(_labelled_ticks(ax, w)) >= 2 for ax in fig.axes for w in "xy"] == [True] * 4
    assert dict(skipped)["c-mel"] == "continuous latent: no bit rate"


def test_four_axes_put_the_best_on_top(results):
    axes = {a.label: a for a in four_axes(results)}
    assert list(axes) == ["bits/s", "mel distance", "PESQ-WB", "STOI", "predictable fraction", "latency ms"]
    assert axes["bits/s"].positions() == {"b-1k": 1.0, "a-6k": 0.0}  # c-mel: no bits, not placed
    assert axes["mel distance"].positions()["c-mel"] == 1.0 and axes["mel distance"].positions()["b-1k"] == 0.0
    assert axes["PESQ-WB"].positions()["b-1k"] == 1.0  # higher is better: not flipped
    assert axes["predictable fraction"].raw["b-1k"] == pytest.approx(0.2 / 0.9)
    assert axes["latency ms"].positions() == {"b-1k": 1.0, "a-6k": 0.0}
    assert axes["latency ms"].cannot == {"c-mel"} and axes["latency ms"].markers["c-mel"] == "s"


def test_missing_values_never_stop_the_report(results, tmp_path):
    broken = copy.deepcopy(results)
    toks = broken["tokenizers"]
    del toks["b-1k"]["modelability"]  # a reused row from before modelability
    del toks["a-6k"]["streaming"]
    toks["a-6k"]["modelability"] = {"probe_bits_per_second": None, "skipped": "classical codec"}
    toks["a-6k"]["distortion"].update(mel_distance=math.nan, stoi=None)
    toks["d-nan"] = {"rate": {"bits_per_second": math.nan}, "distortion": {}, "streaming": {"skipped": "x"}}
    toks["e-neg"] = _row(3000, 0.3, 10.0, 0.95)
    toks["e-neg"]["modelability"]["predictable_bits_per_second"] = -5.0
    broken["run"] = {}
    del broken["data"]
    text = write_report(broken, tmp_path).read_text()
    assert NOT_MEASURED in text and "a-6k (classical codec)" in text
    assert "d-nan (continuous latent: no bit rate)" in text and "e-neg (predictable bits/s -5" in text
    assert not re.search(r">(nan|NaN|None)<", text)  # missing cells read "not measured"
    assert all(f"id='{f}'" in text for f in ("fig-four-axes", "fig-rate-distortion", "fig-rate-modelability"))
    continuous = {"tokenizers": {"c-mel": results["tokenizers"]["c-mel"]}, "data": {}, "run": {}}
    text = write_report(continuous, tmp_path).read_text()  # no bits at all: rate plots not drawn, said so
    assert text.count("Not plotted: nothing to draw") == 2 and "id='fig-four-axes'><img" in text


def _chromium() -> str:
    browser = next((b for b in ("/usr/bin/chromium", "/usr/bin/chromium-browser") if Path(b).exists()), None)
    if browser is None:
        pytest.skip("no /usr/bin/chromium (apt-get install -y chromium)")
    return browser


def test_report_renders_in_headless_chromium(results, tmp_path):
    browser = _chromium()
    save_audio(tmp_path / "examples" / "a.wav", 0.1 * torch.randn(1, 1600), 16000)
    path = write_report(results, tmp_path)
    shot = tmp_path / "shot.png"
    subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", f"--screenshot={shot}",
                    "--window-size=800,2000", path.resolve().as_uri()], check=True, timeout=60,
                   capture_output=True)
    assert shot.is_file() and shot.stat().st_size > 10_000


_PROBE = """<script>
var th = document.querySelectorAll('table.sortable th')[2]; th.click();
var out = document.createElement('pre'); out.id = 'probe';
out.textContent = JSON.stringify({width: document.documentElement.scrollWidth, sort: th.getAttribute('aria-sort'),
  arrow: th.querySelector('.sort-arrow').textContent,
  order: Array.prototype.map.call(document.querySelectorAll('table.sortable tbody tr'), function (r) {
    return r.cells[0].textContent; })});
document.body.appendChild(out);
</script></body>"""


def test_sorting_and_800_px_in_headless_chromium(results, tmp_path):
    """Click the bits/s header: ascending, ▲, "not measured" last; the page is no wider than 800 px."""
    browser = _chromium()
    page = tmp_path / "probe.html"
    page.write_text(write_report(results, tmp_path).read_text().replace("</body>", _PROBE), encoding="utf-8")
    dom = subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--dump-dom",
                          "--window-size=800,1000", page.resolve().as_uri()], check=True, timeout=60,
                         capture_output=True, text=True).stdout
    probe = json.loads(re.search(r"<pre id=\"probe\">(.*?)</pre>", dom, re.S).group(1).replace("&quot;", '"'))
    assert probe["sort"] == "ascending" and probe["arrow"] == "▲"
    assert probe["order"] == ["b-1k", "a-6k", "c-mel"]
    assert probe["width"] <= 800
