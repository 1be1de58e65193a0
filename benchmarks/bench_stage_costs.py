"""What each stage of the bench costs per hour of audio, for the built-in tokenizers (issue 18).

    PYTHONPATH=src python benchmarks/bench_stage_costs.py [-t NAME ...] [--preset standard|quick|full] [--threads N]

Runs :func:`audiolatent.bench.runner.run_bench` on the built-in corpus with the latent cache off
(every file encoded in this run) and prints, per tokenizer, CPU-seconds of wall time per hour
of audio for the stages that scale with the data: encoding the scored (test) files, decoding
them, the distortion metrics, and encoding the train split for the probes; and the seconds of
the stages that do not (the streaming probe, the modelability probes at the preset's budget).
Wall time on this machine under its load at the time: name the machine beside the figures.
"""

from __future__ import annotations

import argparse

import torch

from audiolatent.bench.runner import DEFAULT_TOKENIZERS, run_bench


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("-t", "--tokenizer", action="append", default=None)
    parser.add_argument("--preset", default="standard", choices=("quick", "standard", "full"))
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    names = args.tokenizer or list(DEFAULT_TOKENIZERS)
    results = run_bench(names, preset=args.preset, progress=False, cache=False)
    print(f"preset {args.preset}, {args.threads} threads, {results['run']['environment'].get('cpu', 'CPU')}; "
          "seconds per hour of audio (encode, decode, metrics: the scored files; train encode: the train split), "
          "seconds per tokenizer (streaming probe, probes)")
    print("| tokenizer | encode s/h | decode s/h | metrics s/h | train encode s/h | streaming s | probes s | total s |")
    print("|---|---|---|---|---|---|---|---|")
    for name, row in results["tokenizers"].items():
        sec = row["seconds"]
        hours, train_hours = sec["audio"] / 3600, max(sec.get("train_audio", 0.0), 1e-9) / 3600
        train = f"{sec['train_encode'] / train_hours:.0f}" if sec.get("train_audio") else "-"
        print(f"| {name} | {sec['encode'] / hours:.0f} | {sec['decode'] / hours:.0f} | {sec['metrics'] / hours:.0f} | "
              f"{train} | {sec.get('streaming', 0):.1f} | {sec.get('probes', 0):.1f} | {sec['total']:.0f} |")


if __name__ == "__main__":
    main()
