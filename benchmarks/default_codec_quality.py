"""Quality table of the default codec beside Codec2 and Opus (README, "The default codec").

    PYTHONPATH=src python benchmarks/default_codec_quality.py [-t NAME_OR_PATH ...] [--out FILE.json]

On the test splits of ``speech_real`` (files >= 1 s, the issue's bar) and ``speech_aligned``
(four other voices, never trained on) it runs the bench's distortion stage
(:func:`audiolatent.bench.runner.run_bench`: alignment by cross-correlation, PESQ-WB, STOI and
mel distance at 16 kHz) for each tokenizer, prints a markdown table and writes the bench results
(config, versions, data) as JSON. Codec2 synthesises random phases, so its scores move by about
0.01 between runs.
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
METRICS = ["pesq_wb", "stoi", "mel_distance"]
CORPORA = {"speech_real": 1.0, "speech_aligned": 0.0}  # corpus -> shortest test file (s)


def measure(tokenizers: list[str], out: Path | None) -> dict:
    table: dict = {}
    runs = {}
    with tempfile.TemporaryDirectory() as tmp:
        for corpus, min_seconds in CORPORA.items():
            entries = [e for e in read_manifest(builtin_corpus(corpus)) if e.split == "test" and e.duration >= min_seconds]
            manifest = Path(tmp) / f"{corpus}.jsonl"
            write_manifest(entries, manifest)
            results = run_bench(tokenizers, data=manifest, metrics=METRICS + ["rate"], preset="full", progress=False)
            runs[corpus] = results
            for name, row in results["tokenizers"].items():
                table.setdefault(name, {})[corpus] = {m: row["distortion"][m] for m in METRICS}
                table[name]["bits_per_second"] = row["rate"]["bits_per_second"]
                table[name][corpus]["files"] = row["distortion"]["files"]
    if out is not None:
        with atomic_path(out) as tmp_file:
            tmp_file.write_text(json.dumps({"table": table, "runs": runs}, indent=2, default=str))
    return table


def markdown(table: dict) -> str:
    lines = ["| tokenizer | kbps | " + " | ".join(f"{c} {m}" for c in CORPORA for m in ("PESQ-WB", "STOI", "mel dist.")) + " |",
             "|---|---|" + "---|" * (3 * len(CORPORA))]
    for name, row in table.items():
        cells = [f"{row[c]['pesq_wb']:.2f} | {row[c]['stoi']:.3f} | {row[c]['mel_distance']:.3f}" for c in CORPORA]
        lines.append(f"| {name} | {row['bits_per_second'] / 1000:.1f} | " + " | ".join(cells) + " |")
    files = ", ".join(f"{c}: {next(iter(table.values()))[c]['files']} files" for c in CORPORA)
    lines.append(f"\n({files}; speech_real test files >= 1 s)")
    return "\n".join(lines)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-t", "--tokenizer", action="append", help=f"tokenizers (default: {', '.join(TOKENIZERS)})")
    parser.add_argument("--out", type=Path, default=None, help="write the table and bench results as JSON")
    args = parser.parse_args()
    print(markdown(measure(args.tokenizer or TOKENIZERS, args.out)))
