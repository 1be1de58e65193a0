"""Issue 17's comparison: the variable-rate codec beside fixed-rate and lower-rate points, on all four axes.

    PYTHONPATH=src python benchmarks/varrate_comparison.py [-t NAME_OR_PATH ...] [--out FILE.json] [--preset NAME]

For each corpus (``speech_real`` test, the voice the codecs were trained on, and ``speech_aligned``
test, four synthetic voices with phone alignments) it runs the whole bench
(:func:`audiolatent.bench.runner.run_bench`: rate, distortion, streaming probe, modelability
probes trained on the corpus's train split) for each tokenizer and prints one markdown table per
corpus: segments (latent frames) per second with their spread over files, nominal and
entropy-coded kbps (durations included), tokens/s in speech and in silence, mel distance,
PESQ-WB, STOI, the declared and probed latency, and the modelability probe's bits per second of
audio (tokens and durations together) with its estimator and the unigram baseline.

Preset ``every-file`` (the default): every test file scored, the probes at the standard bench's
budget (``STANDARD_BUDGET``: 400 transformer steps; the full budget's 1,000 steps and data-efficiency
curve cost about 2.5x the time for five tokenizers on two corpora); any bench preset name
(``quick``, ``standard``, ``full``) instead.

Default tokenizers: ``codec-16k-default`` (fixed 50 Hz), ``codec-16k-varrate`` (causal segments),
``codec-16k-varrate-phones`` (one segment per phone; scored only where the corpus has
alignments) and, when their runs exist, the 25 and 12.5 Hz query-pool codecs of the recipes
``qpool-16k-25hz-warm`` / ``qpool-16k-12hz-warm`` (the run folder ``runs/<recipe>``: its latest checkpoint).
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from audiolatent import load_tokenizer
from audiolatent.bench.modelability import STANDARD_BUDGET
from audiolatent.bench.pipeline.inputs import PRESETS, BenchPreset
from audiolatent.bench.runner import run_bench
from audiolatent.core.atomic import atomic_path
from audiolatent.data import write_manifest
from audiolatent.data.corpus import builtin_corpus
from audiolatent.data.manifest import read_manifest

SHIPPED = ["codec-16k-default", "codec-16k-varrate", "codec-16k-varrate-phones"]
QUERY_POOL_RUNS = ["runs/qpool-16k-25hz-warm", "runs/qpool-16k-12hz-warm"]  # run folders: their latest checkpoint
CORPORA = ["speech_real", "speech_aligned"]
METRICS = ["pesq_wb", "stoi", "mel_distance", "rate", "streaming", "modelability"]


#: every test file, the standard bench's probe budget and streaming probe
EVERY_FILE = BenchPreset("every-file", None, STANDARD_BUDGET, PRESETS["standard"].streaming, PRESETS["standard"].excluded)


def default_tokenizers() -> list[str]:
    return SHIPPED + [run for run in QUERY_POOL_RUNS if Path(run).exists()]


def measure(tokenizers: list[str], corpora: list[str], preset: str | BenchPreset, out: Path | None) -> dict:
    needs_phones = {name: bool(getattr(load_tokenizer(name), "needs_phones", False)) for name in tokenizers}
    runs = {}
    with tempfile.TemporaryDirectory() as tmp:
        for corpus in corpora:
            entries = [e for e in read_manifest(builtin_corpus(corpus)) if e.split in ("train", "test")]
            manifest = Path(tmp) / f"{corpus}.jsonl"
            write_manifest(entries, manifest)
            aligned = all(e.phones for e in entries)
            names = [n for n in tokenizers if aligned or not needs_phones[n]]
            runs[corpus] = run_bench(names, data=manifest, metrics=METRICS, preset=preset, progress=True, examples=0)
    if out is not None:
        with atomic_path(out) as tmp_file:
            tmp_file.write_text(json.dumps(runs, indent=2, default=str))
    return runs


def _f(value, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


def _latency(streaming: dict) -> str:
    declared = streaming.get("declared_algorithmic_latency_ms")
    probed = streaming.get("algorithmic_latency_ms")
    if declared is None:
        return "offline (whole utterance)"
    return f"{declared:.0f} / {_f(probed, '.0f')}"


def markdown(runs: dict) -> str:
    lines = []
    for corpus, results in runs.items():
        lines += [f"\n**{corpus}** test ({next(iter(results['tokenizers'].values()))['distortion']['files']} files)\n",
                  "| tokenizer | frames/s (std over files) | kbps | entropy kbps | tokens/s speech / silence | mel dist. "
                  "| PESQ-WB | STOI | latency ms declared / probed | probe kbps (est.) | unigram kbps |",
                  "|---|---|---|---|---|---|---|---|---|---|---|"]
        for name, row in results["tokenizers"].items():
            rate, dist, model = row["rate"], row["distortion"], row["modelability"]
            codebooks = sum(s["codebooks"] for s in rate["streams"].values() if s["kind"] == "discrete")
            spread = rate["tokens_per_second_spread"]
            content = rate["by_content"]
            unigram = sum(s.get("unigram_bits_per_second") or 0.0 for s in model.get("streams", {}).values())
            estimators = sorted({s.get("estimator") for s in model.get("streams", {}).values() if s.get("estimator")})
            lines.append(
                f"| {Path(name).name} "
                f"| {spread['mean'] / codebooks:.1f} ({spread['std'] / codebooks:.1f}) "
                f"| {rate['nominal_bits_per_second'] / 1000:.2f} | {rate['entropy_bits_per_second'] / 1000:.2f} "
                f"| {_f(content['speech']['tokens_per_second'], '.0f')} / {_f(content['silence']['tokens_per_second'], '.0f')} "
                f"| {dist['mel_distance']:.3f} | {dist['pesq_wb']:.2f} | {dist['stoi']:.3f} | {_latency(row['streaming'])} "
                f"| {_f(model.get('probe_bits_per_second') and model['probe_bits_per_second'] / 1000, '.2f')} "
                f"({', '.join(estimators) or '-'}) | {unigram / 1000:.2f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-t", "--tokenizer", action="append", help="tokenizer name or checkpoint (repeat)")
    parser.add_argument("--corpus", action="append", choices=CORPORA, help="built-in corpus (default: both)")
    parser.add_argument("--preset", default="every-file", choices=["every-file", *PRESETS],
                        help="bench preset (default every-file: every test file, the standard probe budget)")
    parser.add_argument("--out", type=Path, default=None, help="write the bench results as JSON")
    args = parser.parse_args()
    preset = EVERY_FILE if args.preset == "every-file" else args.preset
    print(markdown(measure(args.tokenizer or default_tokenizers(), args.corpus or CORPORA, preset, args.out)))
