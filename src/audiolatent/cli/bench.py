"""``audiolatent bench``: place tokenizers on the four axes and write results.json + report.html.

Hooked into ``audiolatent.cli.main.build_parser`` by ``add_bench_parser(sub)``. With no
``--tokenizer``, runs :data:`audiolatent.bench.runner.DEFAULT_TOKENIZERS`, skipping (with a
notice on stderr) the ones that are not registered or whose codec library is missing.
"""

from __future__ import annotations

import argparse
import sys

__all__ = ["add_bench_parser"]


def add_bench_parser(subparsers) -> argparse.ArgumentParser:
    """Add the ``bench`` sub-command to ``subparsers`` (from ``parser.add_subparsers``)."""
    from audiolatent.cli.main import NameFriendlyHelpFormatter, tokenizer_names_epilog

    p = subparsers.add_parser("bench", help="rate, distortion, modelability and streaming of tokenizers; HTML report",
                              epilog="presets: --quick (smoke test), the default (standard), --full (every test file, "
                                     "ASR). " + tokenizer_names_epilog(),
                              formatter_class=NameFriendlyHelpFormatter)
    p.add_argument("--tokenizer", "-t", action="append", metavar="NAME_OR_PATH",
                   help="tokenizer name or checkpoint directory (repeatable; default: mel-16k, dmel-16k, "
                        "codec-16k-default, opus-6k, codec2-3200)")
    p.add_argument("--data", default=None, metavar="MANIFEST_OR_FOLDER",
                   help="manifest (.jsonl), folder or file with train/test splits (default: built-in corpus)")
    p.add_argument("--split", choices=("test", "train", "all"), default="test",
                   help="files distortion and rate are measured on: the test split (default), the train split, or "
                        "every file of --data (train and all skip the modelability probes: nothing is held out); "
                        "the preset's cap applies, --full scores every file")
    p.add_argument("--out", default="bench_out", metavar="DIR", help="folder for results.json, report.html, examples")
    p.add_argument("--metrics", nargs="+", default=None, metavar="NAME",
                   help="distortion metrics to compute (default: all that apply); the names rate, streaming, "
                        "modelability select those axes")
    size = p.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true",
                      help="smoke test: 12 s of test audio per corpus, 40-step probes (a few minutes on a CPU)")
    size.add_argument("--full", action="store_true",
                      help="every test file, probes of up to 1000 steps and ASR word error rate (the default measures "
                           "60 s of test audio per corpus with probes of up to 400 steps, under 10 minutes for the "
                           "built-ins)")
    p.add_argument("--random-weights", action="store_true",
                   help="build external adapters (encodec-24k, dac-16k, ...) with random weights instead of their "
                        "official checkpoints (rows are named 'NAME (random weights)')")
    p.add_argument("--force", action="store_true",
                   help="recompute every tokenizer (by default, tokenizers whose results in --out were made with the "
                        "same config, weights, data and preset are reused)")
    p.add_argument("--verbose", action="store_true",
                   help="print warnings (too short for a metric, no voiced frame...) as they happen; by default they "
                        "are collected and summarised once at the end")
    p.add_argument("--kind", choices=("speech", "music", "audio"), default=None,
                   help="what --data is (default: speech, unless every manifest row says \"speech\": false); "
                        "speech-only metrics (PESQ, STOI, F0, WER) skip music and audio")
    cache = p.add_mutually_exclusive_group()
    cache.add_argument("--cache", default=None, metavar="DIR",
                       help="folder of the latent cache (default: $AUDIOLATENT_CACHE/bench or ~/.cache/audiolatent/bench): "
                            "each file is encoded once per tokenizer and weights, for every stage and later runs")
    cache.add_argument("--no-cache", action="store_true", help="encode every file again and keep nothing")
    p.add_argument("--device", default=None, metavar="DEVICE",
                   help="run the tokenizers on this device (cpu, cuda, cuda:1, mps; default cpu); under torchrun, "
                        "cuda means each process's own GPU (LOCAL_RANK)")
    p.add_argument("--threads", type=int, default=None, metavar="N",
                   help="torch threads per process (default: the cores this process may use, divided among the "
                        "processes of a torchrun on this machine)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=_cmd_bench)
    return p


def _default_tokenizers() -> list[str]:
    from audiolatent.bench.runner import DEFAULT_TOKENIZERS
    from audiolatent.core.errors import AudioLatentError
    from audiolatent.core.registry import list_tokenizers, load_tokenizer

    registered = {e.name for e in list_tokenizers()}
    chosen = []
    for name in DEFAULT_TOKENIZERS:
        if name not in registered:
            print(f"audiolatent bench: {name} is not registered; skipped", file=sys.stderr)
            continue
        try:
            load_tokenizer(name)
        except (AudioLatentError, ImportError) as exc:
            print(f"audiolatent bench: {name} skipped: {exc}", file=sys.stderr)
            continue
        chosen.append(name)
    return chosen


def default_threads() -> int:
    """The cores this process may use (its CPU affinity), shared among the ``LOCAL_WORLD_SIZE``
    processes ``torchrun`` starts on this machine; at least 1."""
    import os

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, cores // max(1, int(os.environ.get("LOCAL_WORLD_SIZE", "1"))))


def _cmd_bench(args: argparse.Namespace) -> int:
    import torch

    from audiolatent.core.errors import ConfigError

    if args.threads is not None and args.threads < 1:
        raise ConfigError(f"--threads must be at least 1, got {args.threads}")
    before = torch.get_num_threads()
    torch.set_num_threads(args.threads or default_threads())
    try:
        return _bench(args)
    finally:  # main() may run in-process (tests, notebooks): leave torch's threads as they were
        torch.set_num_threads(before)


def _bench(args: argparse.Namespace) -> int:
    import os
    from pathlib import Path

    from audiolatent.bench.runner import format_table, run_bench

    tokenizers = args.tokenizer or _default_tokenizers()
    preset = "quick" if args.quick else "full" if args.full else "standard"
    results = run_bench(tokenizers, data=args.data, out=args.out, metrics=args.metrics, preset=preset,
                        progress=not args.no_progress, pretrained=not args.random_weights, force=args.force,
                        live_warnings=args.verbose, split=args.split, kind=args.kind,
                        cache=False if args.no_cache else args.cache, device=args.device)
    if int(os.environ.get("RANK", "0")) != 0:  # torchrun: rank 0 reports for every rank
        return 0
    print(format_table(results))
    for corpus, info in results["data"].items():
        scored = info.get("scored") or {}
        if scored.get("files", 0) < scored.get("available_files", 0):
            print(f"{corpus}: scored the first {scored['files']} of {scored['available_files']} files of --split "
                  f"{args.split} (the {preset} preset's cap; --full scores every file)", file=sys.stderr)
    seen = results["run"].get("warnings") or []
    if seen and not args.verbose:
        total = sum(w["count"] for w in seen)
        print(f"{total} warning(s), {len(seen)} distinct (--verbose shows them live; all in results.json run.warnings):",
              file=sys.stderr)
        for w in seen[:8]:
            print(f"  {w['count']:>4} x {w['message'][:160]}", file=sys.stderr)
        if len(seen) > 8:
            print(f"  ... and {len(seen) - 8} more", file=sys.stderr)
    reused = results["run"].get("reused") or []
    if reused:
        print(f"reused from an earlier run with the same config, weights, data and preset: {', '.join(reused)} "
              "(--force recomputes)")
    print(f"wrote {args.out}/results.json and {Path(args.out) / 'report.html'}")
    return 0
