"""Inference speed of our ResidualVQ and FSQ against vector-quantize-pytorch's.

Run (CPU, 2 threads, as the figures in the quantize report):

    PYTHONPATH=src python benchmarks/bench_quantizers.py

Each comparison builds both implementations with random weights, gives ours the other's
codebooks / projections where the designs coincide (so the codes can be checked to agree),
and times inference ``encode + decode`` of the same input ``[1, 750 frames, 128 dims]``
(10 s at 75 Hz) under ``torch.inference_mode()``: warm-up, then ``--repeats`` rounds that
alternate the two implementations (so load spikes hit both alike), reporting each one's median.
Each input is given in the implementation's native layout (ours ``[B, D, T]``, theirs
``[B, T, D]``), prepared outside the timed region. Prints one line per comparison with the
ratio theirs/ours (> 1 means ours is faster) and a final JSON line with the versions.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from collections.abc import Callable

import torch

from audiolatent.quantize import FSQ, ResidualVQ

INSTALL_HINT = (
    "vector_quantize_pytorch is not installed; to compare, install it without touching torch:\n"
    "    pip install einops einx frozendict loguru torch-einops-utils\n"
    "    pip install --no-deps vector-quantize-pytorch\n"
    "(or simply `pip install vector-quantize-pytorch` if its torch requirement is already met)"
)


def median_times(fns: dict[str, Callable[[], object]], repeats: int, warmup: int) -> dict[str, float]:
    """Median seconds per call of each function, timed in alternating rounds."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}


def report(name: str, ours: float, theirs: float | None, extra: str = "") -> dict:
    line = f"{name}: ours {ours * 1e3:.3f} ms"
    result = {"name": name, "ours_ms": round(ours * 1e3, 4)}
    if theirs is not None:
        ratio = theirs / ours
        line += f", vector-quantize-pytorch {theirs * 1e3:.3f} ms, ratio theirs/ours {ratio:.2f}x"
        result.update(theirs_ms=round(theirs * 1e3, 4), ratio=round(ratio, 3))
    print(line + (f" ({extra})" if extra else ""), flush=True)
    return result


def bench_rvq(vqp, frames: int, dim: int, repeats: int, warmup: int) -> dict:
    n_q, size = 8, 1024
    torch.manual_seed(0)
    ours = ResidualVQ(dim, n_codebooks=n_q, codebook_size=size, kmeans_init=False).eval()
    x = torch.randn(1, frames, dim)  # [B, T, D]
    z = x.transpose(1, 2).contiguous()  # [B, D, T]
    fns = {"ours": lambda: ours.decode(ours.encode(z))}
    extra = ""
    if vqp is not None:
        theirs = vqp.ResidualVQ(dim=dim, num_quantizers=n_q, codebook_size=size).eval()
        with torch.no_grad():
            for layer, codebook in zip(ours.layers, theirs.codebooks):
                layer.embed.copy_(codebook)
        with torch.inference_mode():
            _, their_codes, _ = theirs(x)
            our_codes = ours.encode(z)[0]
            agree = (our_codes.transpose(1, 2) == their_codes).float().mean().item()
            diff = (theirs.get_output_from_indices(their_codes) - ours.decode([our_codes]).transpose(1, 2)).abs().max().item()
        extra = f"codes agree {agree:.1%}, max |z_q diff| {diff:.1e}"

        def run_theirs():
            _, codes, _ = theirs(x)
            return theirs.get_output_from_indices(codes)

        fns["theirs"] = run_theirs
    with torch.inference_mode():
        times = median_times(fns, repeats, warmup)
    name = f"rvq {n_q}x{size} dim {dim}, encode+decode [1, {frames} frames]"
    return report(name, times["ours"], times.get("theirs"), extra)


def bench_fsq(vqp, frames: int, dim: int, repeats: int, warmup: int) -> dict:
    levels = [8, 5, 5, 5]
    torch.manual_seed(0)
    ours = FSQ(dim, levels=levels).eval()
    x = torch.randn(1, frames, dim)
    z = x.transpose(1, 2).contiguous()
    fns = {"ours": lambda: ours.decode(ours.encode(z))}
    extra = ""
    if vqp is not None:
        theirs = vqp.FSQ(levels=levels, dim=dim).eval()
        with torch.no_grad():
            ours.in_proj.load_state_dict(theirs.project_in.state_dict())
            ours.out_proj.load_state_dict(theirs.project_out.state_dict())
        with torch.inference_mode():
            _, their_codes = theirs(x)
            our_codes = ours.encode(z)[0]
            agree = (our_codes[:, 0] == their_codes).float().mean().item()
            diff = (theirs.indices_to_codes(their_codes) - ours.decode([our_codes]).transpose(1, 2)).abs().max().item()
        extra = f"codes agree {agree:.1%}, max |z_q diff| {diff:.1e}"

        def run_theirs():
            _, codes = theirs(x)
            return theirs.indices_to_codes(codes)

        fns["theirs"] = run_theirs
    with torch.inference_mode():
        times = median_times(fns, repeats * 5, warmup * 5)  # FSQ calls are short: more rounds
    name = f"fsq levels {levels} dim {dim}, encode+decode [1, {frames} frames]"
    return report(name, times["ours"], times.get("theirs"), extra)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=750)
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=40)
    parser.add_argument("--warmup", type=int, default=5)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    try:
        import vector_quantize_pytorch as vqp
    except ImportError:
        vqp = None
        print(INSTALL_HINT, file=sys.stderr)
    results = [
        bench_rvq(vqp, args.frames, args.dim, args.repeats, args.warmup),
        bench_fsq(vqp, args.frames, args.dim, args.repeats, args.warmup),
    ]
    versions = {
        "torch": torch.__version__,
        "vector_quantize_pytorch": _version("vector-quantize-pytorch") if vqp is not None else None,
        "audiolatent": _version("audiolatent"),
        "python": platform.python_version(),
        "threads": torch.get_num_threads(),
        "frames": args.frames,
        "dim": args.dim,
        "repeats": args.repeats,
    }
    print(json.dumps({"versions": versions, "results": results}))
    return 0


def _version(package: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return None


if __name__ == "__main__":
    sys.exit(main())
