"""Ship trained runs of the default-codec recipes as the built-in ``codec-16k-default`` (or another built-in).

    PYTHONPATH=src python scripts/ship_default_codec.py RUN [RUN ...] [--before CONFIG_YAML] [--curve PNG]
        [--name NAME] [--weights int8|float16|float32]

``--name``: the packaged tokenizer to write (default ``codec-16k-default``; the vocoders are shipped
the same way: ``--name mel-16k-vocoder``), to ``src/audiolatent/pretrained/NAME/``, with its curve at
``docs/NAME-curve.png`` unless ``--curve`` says otherwise.

RUN ...: the training runs of one lineage in order, each started ``--init-from`` the one before
(the shipped codec is one run, ``default-16k-aug``; the earlier lineage was ``default-16k``, then
``default-16k-finetune``, then ``default-16k-voices``); the last run's latest checkpoint is
shipped. ``--before``: a config.yaml whose ``training`` record describes the stages that came
before the first RUN (e.g. the previously shipped codec's, when its run folder is
gone).

1. writes the checkpoint with int8 weights (:mod:`audiolatent.core.checkpoint`) to
   ``src/audiolatent/pretrained/codec-16k-default/``, with a ``training`` record in its config.yaml:
   one entry per stage (recipe, command, data, steps, wall time, machine, versions, what it was
   initialised from) and the total wall time of all stages;
   ``--teacher DIR`` (repeatable) adds what made each phone teacher the runs used (its report and
   the ``fit phone-teacher`` command), since the config names a teacher by its architecture only;
2. plots the training curves of the RUNs (training mel loss, held-out mel distance), one after
   the other, to ``--curve`` (default ``docs/default-codec-curve.png``).

A stage's wall time is the span from its ``run.json`` to its final checkpoint (evaluations and
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
from audiolatent.core.config import load_yaml  # noqa: E402
from audiolatent.core.registry import load_tokenizer  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
PRETRAINED = ROOT / "src" / "audiolatent" / "pretrained"
DEFAULT_NAME = "codec-16k-default"
CURVE = ROOT / "docs" / "default-codec-curve.png"  # the default codec's; another NAME's is docs/NAME-curve.png


def read_metrics(run: Path) -> tuple[list[dict], list[dict]]:
    train, held_out = [], []
    for line in (run / "metrics.jsonl").read_text().splitlines():
        record = json.loads(line)
        (train if record.get("split") == "train" else held_out).append(record)  # evaluations carry their split
    return train, held_out


def plot_curve(runs: list[Path], labels: list[str], out: Path, title: str) -> None:
    """Training mel loss and held-out mel distance of ``runs`` (named by ``labels``), one after the
    other on one step axis."""
    fig, ax = plt.subplots(figsize=(7, 3.6), dpi=110)
    ax2 = ax.twinx()
    offset, top, top_eval, window = 0, 0.0, 0.0, 10
    for i, (run, label) in enumerate(zip(runs, labels)):
        train, held_out = read_metrics(run)
        steps = [offset + r["step"] for r in train]
        losses = [r["loss/mel"] for r in train]
        smooth = [sum(losses[max(0, j - window + 1) : j + 1]) / len(losses[max(0, j - window + 1) : j + 1]) for j in range(len(losses))]
        first = i == 0
        ax.plot(steps, losses, color="#9ab", lw=0.8, label="training mel loss (batch)" if first else None)
        ax.plot(steps, smooth, color="#357", lw=1.5, label=f"training mel loss ({window}-point mean)" if first else None)
        ax2.plot([offset + r["step"] for r in held_out], [r["eval/mel_distance"] for r in held_out], "o-", color="#c52",
                 ms=3, label="held-out mel distance" if first else None)
        if i:
            ax.axvline(offset, color="#888", lw=0.8, ls="--")
        ax.text(offset, 0.97, f" {label}", fontsize=7, color="#555", va="top", transform=ax.get_xaxis_transform())
        top = max(top, max(smooth))
        top_eval = max([top_eval] + [r["eval/mel_distance"] for r in held_out])
        offset = steps[-1]
    ax.set_xlabel("step (batch 12 x 1 s)")
    ax.set_ylabel("multi-resolution log-mel L1")
    ax.set_ylim(0, top * 1.05)
    ax2.set_ylabel("held-out mel distance (bench definition)", color="#c52")
    ax2.set_ylim(0, top_eval * 1.1)
    lines = ax.get_legend_handles_labels()[0] + ax2.get_legend_handles_labels()[0]
    ax.legend(lines, [line.get_label() for line in lines], loc="lower right", fontsize=8)
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    with atomic_path(out) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)


def recipe_of(command: str) -> str:
    """``configs/train/NAME.yaml`` of the recipe in an ``audiolatent train RECIPE ...`` command line."""
    words = command.split()
    if "train" not in words[:-1]:
        raise SystemExit(f"cannot tell the recipe from the run's command line {command!r}")
    return f"configs/train/{Path(words[words.index('train') + 1]).stem}.yaml"


def stage_record(run: Path) -> tuple[dict, Path]:
    """The training record of one run and its latest checkpoint."""
    step = int((run / "latest").read_text().strip().rsplit("_", 1)[-1])
    checkpoint = run / "checkpoints" / f"step_{step:06d}"
    info = json.loads((run / "run.json").read_text())
    started = os.path.getmtime(run / "run.json")
    finished = os.path.getmtime(checkpoint / "model.safetensors")
    env = info["environment"]
    record = {
        "recipe": recipe_of(env.get("command") or ""),
        "command": env.get("command"),
        "data": info["data"],
        "initialised_from": info.get("initialised_from"),
        "steps": step,
        "wall_seconds": round(finished - started),
        "machine": f"{env.get('platform')}, {env.get('machine')}, {env.get('torch_threads')} torch threads, cuda {env.get('cuda')}",
        "versions": {k: env.get(k) for k in ("audiolatent", "torch", "python")},
        "started_utc": datetime.fromtimestamp(started, timezone.utc).isoformat(timespec="seconds"),
    }
    resumes = []  # each --resume of the run (stopped with SIGTERM, continued exactly), with its command
    for path in sorted(run.glob("run.resume_*.json")):
        resumed = json.loads(path.read_text())
        resumes.append({"at_step": resumed.get("start_step"), "command": resumed["environment"].get("command"),
                        "steps_configured": resumed.get("config", {}).get("steps")})
    if resumes:
        record["resumes"] = resumes
    return record, checkpoint


def teacher_record(folder: Path) -> dict:
    """What made a phone teacher (``audiolatent fit phone-teacher``): its folder as the runs named
    it, its report (data, steps, seed, accuracy) and the command that remakes it."""
    meta = json.loads((folder / "teacher.json").read_text())
    report = meta.get("report", {})
    command = ["audiolatent", "fit", "phone-teacher", *(["--causal"] if meta.get("causal") else [])]
    for source in report.get("data", []):
        command += ["--data", str(source)]
    return {"folder": str(folder), "causal": bool(meta.get("causal")), "command": " ".join(command + ["--out", str(folder)]),
            "report": report}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", type=Path, nargs="+", help="training run directories of one lineage, in order")
    parser.add_argument("--before", type=Path, default=None,
                        help="config.yaml whose training record holds the stages before the first run")
    parser.add_argument("--curve", type=Path, default=None,
                        help=f"training curve PNG (default: {CURVE.relative_to(ROOT)}, or docs/NAME-curve.png)")
    parser.add_argument("--name", default=DEFAULT_NAME, help=f"packaged tokenizer to write (default {DEFAULT_NAME})")
    parser.add_argument("--weights", default="int8", choices=("int8", "float16", "float32"),
                        help="stored weight format (default int8)")
    parser.add_argument("--teacher", type=Path, action="append", default=[],
                        help="a phone-teacher folder the runs used (repeat): its training report and the command "
                             "that remakes it go into the record")
    args = parser.parse_args()
    target = PRETRAINED / args.name
    if args.curve is None:
        args.curve = CURVE if args.name == DEFAULT_NAME else ROOT / "docs" / f"{args.name}-curve.png"
    stages = []
    if args.before is not None:
        before = load_yaml(args.before)["training"]
        stages = list(before.get("stages") or [{k: v for k, v in before.items() if k != "weights"}])
    records = [stage_record(run) for run in args.runs]
    stages += [record for record, _ in records]
    checkpoint = records[-1][1]
    training = {
        "stages": stages,
        "total_steps": sum(stage["steps"] for stage in stages),
        "total_wall_seconds": sum(stage["wall_seconds"] for stage in stages),
        "weights": {"int8": "int8 per output channel (audiolatent export --weights int8)"}.get(args.weights, args.weights),
    }
    if args.teacher:
        training["teachers"] = [teacher_record(folder) for folder in args.teacher]
    codec = load_tokenizer(checkpoint)
    save_checkpoint(codec, target, extra={"training": training}, weights=args.weights)
    size = sum(f.stat().st_size for f in target.iterdir()) / 1e6
    steps = sum(record["steps"] for record, _ in records)
    minutes = sum(record["wall_seconds"] for record, _ in records) / 60
    labels = [Path(record["recipe"]).stem for record, _ in records]
    earlier = f" ({training['total_wall_seconds'] / 60:.0f} min with the earlier ones)" if len(stages) > len(records) else ""
    plot_curve(args.runs, labels, args.curve, f"{args.name}, {len(records)} stage(s): {steps} steps, {minutes:.0f} min on a "
               f"2-core CPU{earlier}")
    print(json.dumps(training, indent=2))
    print(f"wrote {target} ({size:.2f} MB) and {args.curve}")


if __name__ == "__main__":
    main()
