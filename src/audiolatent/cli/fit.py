"""``audiolatent fit phone-teacher`` and ``fit kmeans``: fit a teacher, or k-means units on one, on a corpus.

Hook: ``add_fit_parsers(sub)`` in :func:`audiolatent.cli.main.build_parser`. The model and its
training are documented in :mod:`audiolatent.tokenizers.phone_teacher`, imported only when the
command runs (``--help`` stays fast).
"""

from __future__ import annotations

import argparse
import json
import sys

__all__ = ["add_fit_parsers", "run_phone_teacher", "run_kmeans"]


def run_phone_teacher(args: argparse.Namespace) -> int:
    """Fit on the train rows with phones, report frame accuracy on the test rows, save the teacher."""
    from audiolatent.data.datasets import entries_from_path
    from audiolatent.tokenizers.phone_teacher import fit_phone_teacher

    _start(args, "folder")
    entries = [e for source in args.data for e in entries_from_path(source)]
    train = [e for e in entries if e.split == "train"]
    test = [e for e in entries if e.split == "test"]
    teacher, report = fit_phone_teacher(train, test, steps=args.steps, width=args.width, seed=args.seed,
                                        progress=not args.no_progress, causal=args.causal)
    report["data"] = [str(source) for source in args.data]
    teacher.save(args.out, report)
    print(json.dumps(report, indent=2))
    print(f"audiolatent fit: phone teacher in {args.out}: test frame accuracy {report['test_frame_accuracy']:.3f} "
          f"(majority class {report['majority_baseline']:.3f}, {report['n_phones']} phones)", file=sys.stderr)
    return 0


def run_kmeans(args: argparse.Namespace) -> int:
    """Fit k-means centroids on a teacher's features of the train rows and save them."""
    from audiolatent.data.datasets import entries_from_path
    from audiolatent.tokenizers.units import build_teacher, fit_kmeans, parse_teacher, save_centroids

    _start(args, "file")
    spec = parse_teacher(args.teacher)
    teacher = build_teacher(spec)
    entries = [e for source in args.data for e in entries_from_path(source)]
    train = [e for e in entries if e.split == "train"] if any(e.split == "train" for e in entries) else entries
    centroids, report = fit_kmeans(teacher, train, args.k, args.frame_rate, iters=args.iters, max_frames=args.max_frames,
                                   seed=args.seed, progress=not args.no_progress)
    report.update(teacher_spec=spec, data=[str(source) for source in args.data], files=len(train))
    save_centroids(centroids, args.out, report)
    print(json.dumps(report, indent=2))
    print(f"audiolatent fit: {args.k} units of {teacher.name} in {args.out} (use it as model.bottleneck.centroids)",
          file=sys.stderr)
    return 0


def _common_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--seed", type=int, default=0, help="seed (default 0)")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def _start(args: argparse.Namespace, what: str) -> None:
    """Refuse an existing ``--out`` before minutes of fitting, and set the torch threads."""
    from pathlib import Path

    from audiolatent.core.errors import OutputError

    if Path(args.out).exists():
        raise OutputError(f"{args.out} already exists; choose a new {what} ({what}s are never overwritten)")
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)


def add_fit_parsers(subparsers: argparse._SubParsersAction) -> None:
    """Add ``fit`` (with ``fit phone-teacher``) to ``subparsers``."""
    fit = subparsers.add_parser("fit", help="fit a teacher or k-means units for semantic tokenizers (fit phone-teacher, fit kmeans)",
                                description="Fit the models that semantic tokenizers and codec losses learn from.")
    fit_sub = fit.add_subparsers(dest="fit_command", metavar="FIT_COMMAND", required=True)
    p = fit_sub.add_parser(
        "phone-teacher", help="a phone-posterior network trained on phone alignments (no pretrained weights)",
        description="Train a dilated-conv phone classifier on the mel-16k features of the train rows whose manifest "
        "carries `phones` (speech_aligned does), report its frame accuracy on the test rows beside the majority "
        "class, and write model.safetensors + teacher.json to OUT (never replaced).",
    )
    p.add_argument("--data", action="append", required=True, metavar="MANIFEST",
                   help="manifest with phone alignments (repeat to pool several)")
    p.add_argument("--out", required=True, help="folder to write (must not exist)")
    p.add_argument("--steps", type=int, default=2000, help="optimiser steps (default 2000)")
    p.add_argument("--width", type=int, default=192, help="channels of the conv stack (default 192)")
    p.add_argument("--causal", action="store_true",
                   help="causal framing and convolutions (no lookahead; streams), for a teacher that runs inside a "
                   "streaming codec (encoder kind `dual`)")
    _common_arguments(p)
    p.set_defaults(func=run_phone_teacher)
    p = fit_sub.add_parser(
        "kmeans", help="k-means units on a teacher's features (for the kmeans bottleneck)",
        description="Pool a teacher's features of the train rows (all rows if none is train) at --frame-rate, fit k "
        "centroids (k-means++ seeds, Lloyd iterations) on at most --max-frames of them, and write a safetensors "
        "file for `bottleneck: {kind: kmeans, centroids: FILE}`. Teachers: mel-16k (any continuous tokenizer, or "
        "tokenizer:NAME), phone:DIR (from `fit phone-teacher`), hubert[:LAYER], wavlm[:LAYER].",
    )
    p.add_argument("--teacher", required=True, help="teacher spec, e.g. mel-16k, phone:runs/phone-teacher, hubert:9")
    p.add_argument("--k", type=int, default=500, help="units (default 500)")
    p.add_argument("--frame-rate", type=float, default=50.0, help="frames per second of the units (default 50)")
    p.add_argument("--data", action="append", required=True, metavar="MANIFEST_OR_FOLDER", help="audio (repeat to pool)")
    p.add_argument("--out", required=True, help="centroids file to write (must not exist)")
    p.add_argument("--iters", type=int, default=30, help="Lloyd iterations (default 30)")
    p.add_argument("--max-frames", type=int, default=200_000, help="frames the fit uses at most (default 200000)")
    _common_arguments(p)
    p.set_defaults(func=run_kmeans)
