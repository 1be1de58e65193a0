"""Modelability probe table of the README (issue "second-stage models"): mel, dMel and the default codec.

    PYTHONPATH=src python benchmarks/probe_table.py [-t NAME ...] [--preset full|standard|quick] [--out FILE.json]

Runs the bench's modelability axis (:func:`audiolatent.bench.runner.run_bench`, probes trained on
the built-in corpus's train splits and scored on its test splits, one budget for every
tokenizer) and prints discrete held-out bits/s (with the unigram entropy rate and their ratio) or
continuous NLL/s and next-frame R^2, plus the linear phone-probe accuracy.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from audiolatent.bench.runner import PRESETS, run_bench
from audiolatent.core.atomic import atomic_path

TOKENIZERS = ["mel-16k", "dmel-16k", "codec-16k-default"]


def markdown(results: dict) -> str:
    budget = results["run"]["preset"]["budget"]
    lines = [f"Probe budget `{results['run']['preset']['name']}`: {budget['steps']} steps, dim {budget['dim']}, "
             f"{budget['layers']} layers, {budget['batch_frames']} frames per batch; built-in corpus train -> test.", "",
             "| tokenizer | nominal rate | held-out probe | unigram entropy | probe / unigram | next-frame R² | phone acc. |",
             "|---|---|---|---|---|---|---|"]
    for name, row in results["tokenizers"].items():
        m, rate = row["modelability"], row["rate"]
        streams = next(iter(m["streams"].values()))
        phone = m.get("phoneme_accuracy")
        phone = f"{max(phone.values()):.2f}" if phone else "-"
        if m.get("probe_bits_per_second") is not None:
            lines.append(f"| {name} | {rate['bits_per_second']:,.0f} bits/s | {m['probe_bits_per_second']:,.0f} bits/s | "
                         f"{streams['unigram_bits_per_second']:,.0f} bits/s | {m['ratio_to_entropy']:.2f} | - | {phone} |")
        else:
            lines.append(f"| {name} | {rate['values_per_second']:,.0f} values/s | {m['nll_per_second']:,.0f} nats/s | - | - | "
                         f"{m['r2']:.3f} | {phone} |")
    return "\n".join(lines)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-t", "--tokenizer", action="append", help=f"tokenizers (default: {', '.join(TOKENIZERS)})")
    parser.add_argument("--preset", choices=sorted(PRESETS), default="full")
    parser.add_argument("--out", type=Path, default=None, help="write the bench results as JSON")
    args = parser.parse_args()
    results = run_bench(args.tokenizer or TOKENIZERS, metrics=["mel_distance", "rate", "modelability"], preset=args.preset,
                        progress=False)
    if args.out is not None:
        with atomic_path(args.out) as tmp:
            tmp.write_text(json.dumps(results, indent=2, default=str))
    print(markdown(results))
