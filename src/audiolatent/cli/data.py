"""``audiolatent data prepare LAYOUT ROOT``: a manifest of a corpus on disk, for bench and train;
``audiolatent data align MANIFEST --out MANIFEST``: phone alignments of its transcripts.

Hook: ``add_data_parsers(sub)`` in :func:`audiolatent.cli.main.build_parser`. The layouts and
the decisions behind the rows (splits, skipped files) are documented in
:mod:`audiolatent.data.prepare`, imported only when the command runs (``--help`` stays fast).
"""

from __future__ import annotations

import argparse
import sys

__all__ = ["LAYOUTS", "add_data_parsers", "run_prepare", "run_align"]

#: the layouts of :data:`audiolatent.data.prepare.LAYOUTS`, repeated here so ``--help`` needs no torch
LAYOUTS = ("librispeech", "libritts", "vctk", "musdb", "folder")


def run_prepare(args: argparse.Namespace) -> int:
    """Scan ROOT, write the manifest, print files / hours / speakers per split."""
    from audiolatent.data.manifest import write_manifest
    from audiolatent.data.prepare import manifest_target, scan_layout, summary

    target = manifest_target(args.root, args.out, args.force)
    prepared = scan_layout(args.layout, args.root, split=args.split, stems=args.stems, mic=args.mic,
                           progress=not args.no_progress)
    write_manifest(prepared.entries, target)
    print(summary(prepared, target))
    print(f"use it with: audiolatent bench --data {target}   or   audiolatent train CONFIG --data {target} --out RUN",
          file=sys.stderr)
    return 0


def run_align(args: argparse.Namespace) -> int:
    """Force-align the transcript of every row with text; write a manifest with ``phones``."""
    import warnings
    from pathlib import Path

    from audiolatent.core.errors import OutputError
    from audiolatent.data.manifest import read_manifest, write_manifest
    from audiolatent.data.phone_alignment import align_entries

    target = Path(args.out)
    if target.exists() and not args.force:
        raise OutputError(f"{target} exists; pass --force to replace it")
    if target.resolve() == Path(args.manifest).resolve():
        raise OutputError(f"--out {target} is the input manifest; write the aligned one beside it")
    entries = read_manifest(args.manifest)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # failures are summarised below
        aligned, failures = align_entries(entries, progress=not args.no_progress)
    write_manifest(aligned, target)
    with_text = sum(1 for e in entries if e.text)
    done = sum(1 for a, e in zip(aligned, entries) if a.phones is not None and e.text)
    print(f"aligned {done} of {with_text} rows with text ({len(entries)} rows) -> {target}")
    for line in failures:
        print(f"  not aligned: {line}", file=sys.stderr)
    return 0


def add_data_parsers(subparsers: argparse._SubParsersAction) -> None:
    """Add ``data`` (with ``data prepare``) to ``subparsers`` (from ``parser.add_subparsers``)."""
    data = subparsers.add_parser("data", help="manifests of corpora on disk (data prepare, data align)",
                                 description="Turn corpora on disk into manifests that bench and train read.")
    data_sub = data.add_subparsers(dest="data_command", metavar="DATA_COMMAND", required=True)
    p = data_sub.add_parser(
        "prepare", help="write a JSONL manifest of a LibriSpeech, LibriTTS, VCTK, MUSDB18-HQ or plain folder",
        description="Walk ROOT in LAYOUT and write a manifest (path, id, duration, sample_rate, split, text, voice) "
        "reading only file headers. Splits: LibriSpeech/LibriTTS from the subset (train-* train, dev-* dev, test-* "
        "test); VCTK holds out whole speakers (split_of(speaker), about 10% test); musdb from its train/test "
        "folders; folder by split_of(file stem). Unreadable files are skipped and counted.",
    )
    p.add_argument("layout", choices=LAYOUTS, metavar="LAYOUT", help=f"how ROOT is organised: {', '.join(LAYOUTS)}")
    p.add_argument("root", metavar="ROOT", help="the corpus folder")
    p.add_argument("--out", default=None, metavar="MANIFEST",
                   help="manifest to write (default: ROOT/manifest.jsonl); audio paths are stored relative to it")
    p.add_argument("--force", action="store_true", help="replace an existing manifest")
    p.add_argument("--split", default=None, metavar="NAME",
                   help="give every file this split (e.g. test) instead of the layout's rule")
    p.add_argument("--stems", action="store_true",
                   help="musdb: the vocals, drums, bass and other stems too, not only the mixture")
    p.add_argument("--mic", choices=("mic1", "mic2"), default="mic1", help="vctk 0.92: which microphone (default mic1)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run_prepare)
    p = data_sub.add_parser(
        "align", help="phone alignments of a manifest's transcripts (pocketsphinx, US English)",
        description="Force-align each row's text with pocketsphinx's bundled US-English model (word pass, then "
        "phone pass; 10 ms frames; flite/CMU phone names, pau for silence) and write a manifest whose rows carry "
        "`phones`. Rows without text or whose words are not in the dictionary are kept without phones and listed. "
        "On the synthetic voices of speech_aligned the alignments agree with the true ones on 72-89% of frames.",
    )
    p.add_argument("manifest", metavar="MANIFEST", help="manifest whose rows carry `text`")
    p.add_argument("--out", required=True, metavar="MANIFEST", help="manifest to write (audio paths stored relative to it)")
    p.add_argument("--force", action="store_true", help="replace an existing --out")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run_align)
