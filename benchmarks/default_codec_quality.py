"""Quality table of the default codec beside Codec2 and Opus (README, "The default codec").

    PYTHONPATH=src python benchmarks/default_codec_quality.py [-t NAME_OR_PATH ...] [--out FILE.json]
        [--heldout MANIFEST] [--only-heldout]

On the test splits of ``speech_real`` (files >= 1 s, the issue's bar) and ``speech_aligned``
(four other voices) it runs the bench's distortion stage
(:func:`audiolatent.bench.runner.run_bench`: alignment by cross-correlation, PESQ-WB, STOI, mel
distance and F0 RMSE at 16 kHz) for each tokenizer, prints a markdown table and writes the bench
results (config, versions, data) as JSON. Codec2 synthesises random phases, so its scores move by
about 0.01 between runs.

``--heldout MANIFEST``: also score the test rows of MANIFEST (e.g. the held-out voice of
``scripts/make_voices_corpus.py``: ``/work/voices_corpus/heldout_fr_test.jsonl``, a voice no model
was trained on) and add each tokenizer's held-out / ``speech_real`` ratio of PESQ-WB and STOI.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from audiolatent.bench.runner import run_bench
from audiolatent.core.atomic import atomic_path
from audiolatent.data import write_manifest
from audiolatent.data.corpus import builtin_corpus
from audiolatent.data.manifest import read_manifest

TOKENIZERS = ["codec-16k-default", "codec2-3200", "codec2-1600", "opus-6k"]
METRICS = ["pesq_wb", "stoi", "mel_distance", "f0_rmse_cents"]
CORPORA = {"speech_real": 1.0, "speech_aligned": 0.0}  # corpus -> shortest test file (s)


def measure(tokenizers: list[str], out: Path | None, corpora: dict) -> dict:
    """``corpora``: name -> (manifest, shortest test file in s)."""
    table: dict = {}
    runs = {}
    with tempfile.TemporaryDirectory() as tmp:
        for corpus, (source, min_seconds) in corpora.items():
            entries = [e for e in read_manifest(source) if e.split == "test" and e.duration >= min_seconds]
            manifest = Path(tmp) / f"{corpus}.jsonl"
            write_manifest(entries, manifest)
            results = run_bench(tokenizers, data=manifest, metrics=METRICS + ["rate"], preset="full", progress=False)
            runs[corpus] = results
            for name, row in results["tokenizers"].items():
                table.setdefault(name, {})[corpus] = {m: row["distortion"][m] for m in METRICS}
                table[name][corpus]["bits_per_second"] = row["rate"]["bits_per_second"]  # variable-rate: per corpus
                table[name][corpus]["files"] = row["distortion"]["files"]
    if out is not None:
        with atomic_path(out) as tmp_file:
            tmp_file.write_text(json.dumps({"table": table, "runs": runs}, indent=2, default=str))
    return table


def _f0(value) -> str:
    return "-" if value is None else f"{value:.0f}"


def _kbps(bits_per_second) -> str:
    """Nominal kbps of one corpus (a variable-rate latent's depends on the audio)."""
    return "continuous" if bits_per_second is None else f"{bits_per_second / 1000:.2f}"


def markdown(table: dict, corpora: list[str]) -> str:
    columns = ("kbps", "PESQ-WB", "STOI", "mel dist.", "F0 RMSE (cents)")
    ratio = "heldout" in corpora and "speech_real" in corpora
    lines = ["| tokenizer | " + " | ".join(f"{c} {m}" for c in corpora for m in columns)
             + (" | held-out / speech_real PESQ-WB | STOI" if ratio else "") + " |",
             "|---|" + "---|" * (len(columns) * len(corpora) + 2 * ratio)]
    for name, row in table.items():
        cells = [f"{_kbps(row[c]['bits_per_second'])} | {row[c]['pesq_wb']:.2f} | {row[c]['stoi']:.3f} | "
                 f"{row[c]['mel_distance']:.3f} | {_f0(row[c]['f0_rmse_cents'])}" for c in corpora]
        if ratio:
            held, own = row["heldout"], row["speech_real"]
            cells.append(f"{held['pesq_wb'] / own['pesq_wb']:.2f} | {held['stoi'] / own['stoi']:.2f}")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    files = ", ".join(f"{c}: {next(iter(table.values()))[c]['files']} files" for c in corpora)
    lines.append(f"\n({files}; speech_real test files >= 1 s)")
    return "\n".join(lines)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-t", "--tokenizer", action="append", help=f"tokenizers (default: {', '.join(TOKENIZERS)})")
    parser.add_argument("--out", type=Path, default=None, help="write the table and bench results as JSON")
    parser.add_argument("--heldout", type=Path, default=None, help="manifest of a held-out voice (its test rows are scored)")
    parser.add_argument("--only-heldout", action="store_true", help="with --heldout: score speech_real and the held-out voice only")
    args = parser.parse_args()
    corpora = {c: (builtin_corpus(c), seconds) for c, seconds in CORPORA.items()}
    if args.heldout is not None:
        if not args.heldout.is_file():
            parser.error(f"--heldout {args.heldout}: no such manifest")
        if args.only_heldout:
            corpora.pop("speech_aligned")
        corpora["heldout"] = (args.heldout, 0.0)
    print(markdown(measure(args.tokenizer or TOKENIZERS, args.out, corpora), list(corpora)))
