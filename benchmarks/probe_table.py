"""Modelability table of the README (issue 13): every estimator on mel, dMel and the default codec.

    PYTHONPATH=src python benchmarks/probe_table.py [-t NAME ...] [--preset full|standard|quick] [--out FILE.json]

Runs the bench's modelability axis (:func:`audiolatent.bench.runner.run_bench`, estimators fitted
on the built-in corpus's train splits and scored on its test splits, one budget for every
tokenizer) and prints, for discrete latents, the held-out bits/s of every estimator (train
unigram, bigram, trigram, transformer), the headline (the lowest), predictable bits/s and the
convergence check, then per-codebook rows of the first discrete tokenizer with several
codebooks; for continuous latents NLL/s, predictive information and next-frame R^2. Plus the
linear phone-probe accuracy.
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
    lines = [f"Budget `{results['run']['preset']['name']}`: transformer at most {budget['steps']} steps (early-stopped), "
             f"dim {budget['dim']}, {budget['layers']} layers, {budget['batch_frames']} frames per batch; built-in corpus "
             "train -> test; bits/s of audio, held-out.", "",
             "| tokenizer | nominal | train unigram | bigram | trigram | transformer | headline | predictable | "
             "half-data change | converged | phone acc. |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    per_codebook, continuous = None, []
    for name, row in results["tokenizers"].items():
        m, rate = row["modelability"], row["rate"]
        if not m.get("streams"):  # skipped (a classical codec)
            continue
        phone = m.get("phoneme_accuracy")
        phone = f"{max(phone.values()):.2f}" if phone else "-"
        if m.get("probe_bits_per_second") is not None:
            est = m["estimators"]
            cell = lambda e: f"{est[e]:,.0f}" if est.get(e) is not None else "-"  # noqa: E731
            lines.append(f"| {name} | {rate['bits_per_second']:,.0f} | {cell('unigram')} | {cell('bigram')} | {cell('trigram')} | "
                         f"{cell('transformer')} | **{m['probe_bits_per_second']:,.0f}** ({m['estimator']}) | "
                         f"{m['predictable_bits_per_second']:,.0f} | {100 * m['half_data_change']:.1f} % | {m['converged']} | {phone} |")
            stream = next(iter(m["streams"].values()))
            if per_codebook is None and len(stream["estimators"]["unigram"]["bits_per_second_per_codebook"]) <= 8 \
                    and len(stream["estimators"]["unigram"]["bits_per_second_per_codebook"]) > 1:
                per_codebook = (name, stream)
        else:
            continuous.append(f"| {name} | {rate['values_per_second']:,.0f} | {m['nll_per_second']:,.0f} | "
                              f"{m['marginal_nll_per_second']:,.0f} | {m['predictive_nats_per_second']:,.0f} | {m['r2']:.3f} | {phone} |")
    if continuous:
        lines += ["", "Continuous latents (nats/s of audio, held-out; predictive information = marginal - conditional NLL):", "",
                  "| tokenizer | values/s | conditional NLL | train marginal NLL | predictive information | next-frame R² | phone acc. |",
                  "|---|---|---|---|---|---|---|", *continuous]
    if per_codebook is not None:
        name, stream = per_codebook
        n = len(stream["estimators"]["unigram"]["bits_per_second_per_codebook"])
        lines += ["", f"Per codebook, `{name}` (bits/s):", "",
                  "| estimator | " + " | ".join(f"codebook {k}" for k in range(n)) + " | context chosen |",
                  "|---|" + "---|" * (n + 1)]
        for est, v in stream["estimators"].items():
            contexts = ", ".join(" ".join(c) or "-" for c in v["contexts"]) if "contexts" in v else ""
            lines.append(f"| {est} | " + " | ".join(f"{b:,.0f}" for b in v["bits_per_second_per_codebook"]) + f" | {contexts} |")
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
