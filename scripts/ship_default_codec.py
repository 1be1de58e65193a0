"""Ship a trained run of the ``default-16k`` recipe as the built-in ``codec-16k-default``.

    PYTHONPATH=src python scripts/ship_default_codec.py RUN_DIR [--step N]

1. loads the run's checkpoint (the latest, or ``--step``), and writes it with int8 weights
   (:mod:`audiolatent.core.checkpoint`) to ``src/audiolatent/pretrained/codec-16k-default/``, with
   a ``training`` record in its config.yaml: recipe, command, steps, wall time, machine, versions;
2. plots the training curve (training mel loss, held-out mel distance) to
   ``docs/default-codec-curve.png``.

The wall time is the span from the run's ``run.json`` to the final checkpoint (evaluations and
checkpoint writes included).
"""

from __future__ import annotations

import argparse
import json
import os
from datetime import datetime, timezone
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from audiolatent.core.atomic import atomic_path  # noqa: E402
from audiolatent.core.checkpoint import save_checkpoint  # noqa: E402
from audiolatent.core.registry import load_tokenizer  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
TARGET = ROOT / "src" / "audiolatent" / "pretrained" / "codec-16k-default"
CURVE = ROOT / "docs" / "default-codec-curve.png"


def read_metrics(run: Path) -> tuple[list[dict], list[dict]]:
    train, held_out = [], []
    for line in (run / "metrics.jsonl").read_text().splitlines():
        record = json.loads(line)
        (held_out if record.get("split") == "test" else train).append(record)
    return train, held_out


def plot_curve(run: Path, out: Path, title: str) -> None:
    train, held_out = read_metrics(run)
    fig, ax = plt.subplots(figsize=(7, 3.6), dpi=110)
    steps = [r["step"] for r in train]
    ax.plot(steps, [r["loss/mel"] for r in train], color="#9ab", lw=0.8, label="training mel loss (batch)")
    window = 10
    smooth = [sum(r["loss/mel"] for r in train[max(0, i - window + 1) : i + 1]) / len(train[max(0, i - window + 1) : i + 1])
              for i in range(len(train))]
    ax.plot(steps, smooth, color="#357", lw=1.5, label=f"training mel loss ({window}-point mean)")
    ax.set_xlabel("step (batch 12 x 1 s)")
    ax.set_ylabel("multi-resolution log-mel L1")
    ax.set_ylim(0, max(smooth) * 1.05)
    ax2 = ax.twinx()
    ax2.plot([r["step"] for r in held_out], [r["eval/mel_distance"] for r in held_out], "o-", color="#c52", label="held-out mel distance")
    ax2.set_ylabel("held-out mel distance (bench definition)", color="#c52")
    ax2.set_ylim(0, max(r["eval/mel_distance"] for r in held_out) * 1.1)
    lines = ax.get_legend_handles_labels()[0] + ax2.get_legend_handles_labels()[0]
    ax.legend(lines, [line.get_label() for line in lines], loc="upper right", fontsize=8)
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    with atomic_path(out) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="the training run directory (audiolatent train --out)")
    parser.add_argument("--step", type=int, default=None, help="checkpoint step (default: the latest)")
    args = parser.parse_args()
    run = args.run
    step = args.step or int((run / "latest").read_text().strip().rsplit("_", 1)[-1])
    checkpoint = run / "checkpoints" / f"step_{step:06d}"
    info = json.loads((run / "run.json").read_text())
    started = os.path.getmtime(run / "run.json")
    finished = os.path.getmtime(checkpoint / "model.safetensors")
    env = info["environment"]
    training = {
        "recipe": "configs/train/default-16k.yaml",
        "command": env.get("command"),
        "data": info["data"],
        "steps": step,
        "wall_seconds": round(finished - started),
        "machine": f"{env.get('platform')}, {env.get('machine')}, {env.get('torch_threads')} torch threads, cuda {env.get('cuda')}",
        "versions": {k: env.get(k) for k in ("audiolatent", "torch", "python")},
        "started_utc": datetime.fromtimestamp(started, timezone.utc).isoformat(timespec="seconds"),
        "weights": "int8 per output channel (audiolatent export --weights int8)",
    }
    codec = load_tokenizer(checkpoint)
    save_checkpoint(codec, TARGET, extra={"training": training}, weights="int8")
    size = sum(f.stat().st_size for f in TARGET.iterdir()) / 1e6
    minutes = training["wall_seconds"] / 60
    plot_curve(run, CURVE, f"codec-16k-default: {step} steps, {minutes:.0f} min on a 2-core CPU (default-16k recipe)")
    print(json.dumps(training, indent=2))
    print(f"wrote {TARGET} ({size:.2f} MB) and {CURVE}")


if __name__ == "__main__":
    main()
