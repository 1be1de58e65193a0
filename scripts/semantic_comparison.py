"""The controlled comparison of issue 16 item 4: semantic training options at one bitrate and budget.

Every variant is the recipe of the shipped ``codec-16k-default`` (``default-16k-aug``: causal, 20 ms,
RVQ 4 x 256 at 50 Hz = 1.6 kbps) with one semantic option switched on, trained on the same data for
the same *wall-clock* budget on this machine, then placed on all four axes by one bench run:

=============  ======================================================================================
variant        what changes (``--set`` overrides of default-16k-aug)
=============  ======================================================================================
default        nothing (the baseline)
distill        first RVQ level distilled from the phone teacher's features (SpeechTokenizer)
split-distill  Mimi's split RVQ (1 semantic + 3 acoustic levels), the semantic level distilled
phone          a linear phone classifier on the first level, against the phone teacher (PAST / S3)
xcodec         X-Codec's dual encoder: a frozen *causal* phone teacher's features beside the acoustic
               encoder, fused before the RVQ, and its features reconstructed from the latent (``repa``)
ar             a causal predictor of the next quantised frame, its loss into the encoder (ALMTokenizer)
kmeans-units   k = 500 k-means units of the phone teacher's hidden features (``fit kmeans``, run by
               ``time``) and a decoder trained behind them (recipe ``units-16k``; 448 bits/s, not
               streaming: the teacher sees the whole signal)
continuous     the recipe with a Gaussian bottleneck (16 channels at 50 Hz, KL 1e-4): the footing of
               REPA, which needs a continuous latent
cont.-repa     ``continuous-repa``: that latent aligned to the phone teacher (REPA-style anchoring)
=============  ======================================================================================

Equal wall-clock, honestly: ``time`` runs each variant for ``--timing-steps`` steps on the quiet
machine and reads its steps/s after warm-up; ``train`` then gives each variant
``steps = minutes x 60 x its steps/s`` (so the cosine schedule ends at the budget) and
``--time-limit`` as a guard; runs resume if interrupted. ``bench`` scores them all in one bench run
(the default bench: speech with phone alignments, so the phone probe per codebook is reported) and
writes ``comparison.md`` (the table, with the command of each row) and ``comparison.png``.

usage:
  audiolatent fit phone-teacher --data ../shared/data/speech_aligned/manifest.jsonl --out /work/phone-teacher
  audiolatent fit phone-teacher --causal --data ../shared/data/speech_aligned/manifest.jsonl --out /work/phone-teacher-causal
  python scripts/semantic_comparison.py time  --out runs/semantic --teacher /work/phone-teacher
  python scripts/semantic_comparison.py train --out runs/semantic --teacher /work/phone-teacher --minutes 30
  python scripts/semantic_comparison.py bench --out runs/semantic
Training data: ../shared/data/speech_real and speech_aligned (train splits), as the shipped default.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
DATA = [REPO.parent / "shared" / "data" / "speech_real" / "manifest.jsonl",
        REPO.parent / "shared" / "data" / "speech_aligned" / "manifest.jsonl"]
RECIPE = "default-16k-aug"


def _recipe(name: str) -> dict:
    return yaml.safe_load((REPO / "configs" / "train" / f"{name}.yaml").read_text())


def dual_encoder(causal_teacher: str) -> str:
    """The ``--set model.encoder=...`` value of the xcodec variant: the recipe's encoder as the acoustic part."""
    model = yaml.safe_load(((REPO / "configs" / "train") / _recipe(RECIPE)["model"]).read_text())
    encoder = {"kind": "dual", "acoustic": model["encoder"], "teacher": f"phone:{causal_teacher}", "semantic_dim": 64}
    return "model.encoder=" + json.dumps(encoder)


def continuous() -> list[str]:
    """The recipe with a Gaussian bottleneck (16 channels at 50 Hz, KL 1e-4): the footing of ``repa``."""
    losses = {**_recipe(RECIPE)["losses"], "kl": 1e-4, "commitment": 0.0, "codebook": 0.0}
    return ["model.bottleneck=" + json.dumps({"kind": "gaussian", "latent_dim": 16}), "losses=" + json.dumps(losses)]


def units_centroids(out: Path) -> Path:
    return out / "units-phone-k500.safetensors"


def variants(teacher: str, causal_teacher: str, out: Path) -> dict[str, tuple[str, list[str]]]:
    """Name -> (training recipe, ``--set`` overrides)."""
    return {
        "default": (RECIPE, []),
        "distill": (RECIPE, [f"semantic.teacher=phone:{teacher}", "semantic.distill=1.0"]),
        "split-distill": (RECIPE, ["model.bottleneck.kind=split-rvq", f"semantic.teacher=phone:{teacher}",
                                   "semantic.distill=1.0"]),
        "phone": (RECIPE, [f"semantic.phone_teacher={teacher}", "semantic.phone=1.0"]),
        "xcodec": (RECIPE, [dual_encoder(causal_teacher), f"semantic.teacher=phone:{causal_teacher}", "semantic.repa=1.0"]),
        "ar": (RECIPE, ["semantic.ar=1.0"]),
        "kmeans-units": ("units-16k", [f"model.bottleneck.centroids={units_centroids(out)}",
                                       "model.encoder.teacher=" + json.dumps({"kind": "phone", "path": teacher,
                                                                             "output": "hidden"})]),
        "continuous": (RECIPE, continuous()),
        "continuous-repa": (RECIPE, [*continuous(), f"semantic.teacher=phone:{teacher}", "semantic.repa=1.0"]),
    }


def command(out: Path, name: str, variant: tuple[str, list[str]], steps: int, extra: list[str] = ()) -> list[str]:
    recipe, overrides = variant
    cmd = [sys.executable, "-m", "audiolatent", "train", recipe, "--out", str(out / name), "--steps", str(steps),
           "--no-progress", *extra]
    for source in DATA:
        cmd += ["--data", str(source)]
    for item in overrides:
        cmd += ["--set", item]
    return cmd


def fit_units(args) -> None:
    """k-means units (k = 500) on the phone teacher's hidden features, once."""
    target = units_centroids(args.out)
    if target.is_file():
        return
    cmd = [sys.executable, "-m", "audiolatent", "fit", "kmeans", "--teacher", f"phone:{args.teacher}", "--k", "500",
           "--out", str(target), "--no-progress"]
    for source in DATA:
        cmd += ["--data", str(source)]
    print(" ".join(cmd), flush=True)
    subprocess.run(cmd, check=True)


def steps_per_second(run: Path, skip: int) -> float:
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    speeds = [r["steps_per_second"] for r in records if r.get("split") == "train" and r["step"] > skip]
    if not speeds:
        raise SystemExit(f"{run}: no training record after step {skip}; raise --timing-steps")
    return sum(speeds) / len(speeds)


def run_time(args, table: dict[str, tuple[str, list[str]]]) -> None:
    if "kmeans-units" in table:
        fit_units(args)
    timing = {}
    for name, variant in table.items():
        folder = args.out / "timing"
        cmd = command(folder, name, variant, args.timing_steps, ["--set", "log_every=10", "--set", "eval_every=0",
                                                                   "--set", "checkpoint_every=0"])
        print(" ".join(cmd), flush=True)
        subprocess.run(cmd, check=True)
        timing[name] = steps_per_second(folder / name, skip=10)
        print(f"{name}: {timing[name]:.2f} steps/s", flush=True)
    (args.out / "timing.json").write_text(json.dumps(timing, indent=1))


def run_train(args, table: dict[str, tuple[str, list[str]]]) -> None:
    timing_file = args.out / "timing.json"
    if not timing_file.is_file():
        raise SystemExit(f"{timing_file} is missing: run `time` first")
    timing = json.loads(timing_file.read_text())
    plan = {}
    for name, variant in table.items():
        steps = int(args.minutes * 60 * timing[name])
        extra = ["--time-limit", f"{args.minutes * 1.1:g}"]
        if (args.out / name / "latest").is_file():
            extra.append("--resume")
        cmd = command(args.out, name, variant, steps, extra)
        plan[name] = {"steps": steps, "steps_per_second": timing[name], "command": " ".join(cmd[2:])}
        print(" ".join(cmd), flush=True)
        subprocess.run(cmd, check=True)
    (args.out / "plan.json").write_text(json.dumps(plan, indent=1))


def _row(name: str, result: dict) -> dict:
    mod, dist, rate, stream = result["modelability"], result["distortion"], result["rate"], result["streaming"]
    phone = next(iter((mod.get("streams") or {}).values()), {}).get("phoneme") or {}
    per_codebook = [phone.get(f"codebook_{k}") for k in range(4)]
    def kilo(value):
        return None if value is None else value / 1000

    return {"variant": name, "kbps": kilo(rate.get("bits_per_second")),
            "probe_kbps": kilo(mod.get("probe_bits_per_second")),
            "probe_per_codebook": [b / 1000 for b in mod.get("probe_bits_per_second_per_codebook") or []],
            "phone": (phone.get("all") or {}).get("accuracy"), "phone_per_codebook": per_codebook,
            "nll_per_second": mod.get("nll_per_second"), "predictive_nats_per_second": mod.get("predictive_nats_per_second"),
            "mel": dist.get("mel_distance"), "pesq": dist.get("pesq_wb"), "stoi": dist.get("stoi"),
            "latency_ms": stream.get("algorithmic_latency_ms")}


def run_bench(args, table: dict[str, tuple[str, list[str]]]) -> None:
    names = [n for n in table if (args.out / n / "latest").is_file()]
    if not names:
        raise SystemExit(f"no trained variant under {args.out}")
    cmd = [sys.executable, "-m", "audiolatent", "bench", "--out", str(args.out / "bench"), "--no-progress"]
    for name in names:
        cmd += ["-t", str(args.out / name)]
    for reference in args.reference:
        cmd += ["-t", reference]
    if args.stage == "bench":
        print(" ".join(cmd), flush=True)
        subprocess.run(cmd, check=True)
    results = json.loads((args.out / "bench" / "results.json").read_text())["tokenizers"]
    plan = json.loads((args.out / "plan.json").read_text()) if (args.out / "plan.json").is_file() else {}
    rows = [_row(name, results[str(args.out / name)]) for name in names if str(args.out / name) in results]
    rows += [_row(f"{reference} (reference, not the same budget)", results[reference]) for reference in args.reference
             if reference in results]

    def f(v, fmt=".3f"):
        return "-" if v is None else format(v, fmt)

    lines = ["| variant | kbps | probe kbps | probe kbps per codebook | continuous NLL / predictive nats/s | phone acc. | "
             "phone acc. per codebook | mel | PESQ-WB | STOI | latency ms |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        continuous = ("-" if r["nll_per_second"] is None
                      else f"{r['nll_per_second']:.0f} / {f(r['predictive_nats_per_second'], '.0f')}")
        per_codebook = " / ".join(f(b, ".3f") for b in r["probe_per_codebook"]) or "-"
        lines.append(f"| {r['variant']} | {f(r['kbps'], '.2f')} | {f(r['probe_kbps'], '.3f')} | {per_codebook} | "
                     f"{continuous} | {f(r['phone'])} | "
                     f"{' / '.join(f(a) for a in r['phone_per_codebook'])} | {f(r['mel'])} | {f(r['pesq'], '.2f')} | "
                     f"{f(r['stoi'])} | {f(r['latency_ms'], '.0f')} |")
    lines.append("")

    def trained(name: str) -> str:
        latest = (args.out / name / "latest").read_text().strip()
        return str(int(latest.rsplit("_", 1)[-1]))

    lines += [f"- {name}: `{plan[name]['command']}` ({trained(name)} of {plan[name]['steps']} planned steps in the budget)"
              for name in names if name in plan]
    lines.append(f"- bench: `{' '.join(cmd[2:])}`")
    (args.out / "comparison.md").write_text("\n".join(lines) + "\n")
    (args.out / "comparison.json").write_text(json.dumps(rows, indent=1))
    print("\n".join(lines))
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no plot", file=sys.stderr)
        return
    fig, ax = plt.subplots(figsize=(7.5, 5))
    for r in rows:
        if not r["probe_kbps"]:  # a continuous latent has no bits/s: it is in the table, not on this plot
            continue
        name = r["variant"].split(" (")[0] + (" (shipped)" if "reference" in r["variant"] else "")
        ax.scatter(r["probe_kbps"], r["mel"], s=40 + 400 * (r["phone"] or 0), alpha=0.7)
        ax.annotate(f"{name}: phone {f(r['phone'], '.2f')}", (r["probe_kbps"], r["mel"]),
                    textcoords="offset points", xytext=(8, -3), fontsize=7)
    ax.set_xlabel("modelability: probe kbps (lower = easier to model)")
    ax.set_ylabel("distortion: mel distance (lower = better)")
    ax.set_title("Semantic options, equal wall-clock budget\n(marker size = linear phone-probe accuracy)", fontsize=10)
    ax.margins(x=0.25, y=0.1)
    fig.tight_layout()
    fig.savefig(args.out / "comparison.png", dpi=120)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("stage", choices=("time", "train", "bench", "table"),
                   help="table: write comparison.md / .json / .png again from the existing bench results")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--teacher", default="/work/phone-teacher", help="phone teacher folder (audiolatent fit phone-teacher)")
    p.add_argument("--causal-teacher", default="/work/phone-teacher-causal",
                   help="causal phone teacher folder (fit phone-teacher --causal), inside the xcodec variant's encoder")
    p.add_argument("--minutes", type=float, default=30.0, help="training wall time per variant")
    p.add_argument("--timing-steps", type=int, default=60)
    p.add_argument("--reference", action="append", default=None,
                   help="a shipped tokenizer benched beside the variants (default: codec-16k-default; repeat for more)")
    p.add_argument("--variants", default=None, help="comma-separated subset (default: all)")
    args = p.parse_args()
    args.reference = ["codec-16k-default"] if args.reference is None else args.reference
    table = variants(args.teacher, args.causal_teacher, args.out)
    if args.variants:
        unknown = sorted(set(args.variants.split(",")) - set(table))
        if unknown:
            raise SystemExit(f"unknown variants {unknown}; known: {sorted(table)}")
        table = {k: v for k, v in table.items() if k in args.variants.split(",")}
    args.out.mkdir(parents=True, exist_ok=True)
    {"time": run_time, "train": run_train, "bench": run_bench, "table": run_bench}[args.stage](args, table)


if __name__ == "__main__":
    main()
