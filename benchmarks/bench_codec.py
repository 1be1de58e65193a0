"""Codec speed: our SEANet codecs against the reference packages at the same shape, and streaming cost.

Run (CPU, 2 threads; the numbers in the README come from this command)::

    PYTHONPATH=src:. python benchmarks/bench_codec.py                 # everything
    PYTHONPATH=src:. python benchmarks/bench_codec.py --only encodec --seconds 10

What it measures, all in one process with ``torch.set_num_threads(2)`` and ``inference_mode``:

* ``encodec``: ``configs/codecs/encodec-24k.yaml`` vs ``encodec.EncodecModel.encodec_model_24khz
  (pretrained=False)`` (32 codebooks, 24 kbps) on ``--seconds`` of noise, encode and decode timed
  separately, median of ``--repeats`` (15) after one warm-up, the
  two implementations' calls interleaved so that load on a shared machine hits both alike; three
  modes: weight norm as built; weight norm folded in both (``NeuralCodec.prepare_for_inference
  (winograd=False)`` / ``torch.nn.utils.remove_weight_norm``), exact to float rounding; and folded
  with Winograd convolutions (``prepare_for_inference()``'s default, errors about 3e-5 of a
  layer's output, see ``audiolatent.nn.winograd``) against the same folded reference. Ratio =
  their time / our time (> 1: ours faster).
* ``dac``: ``configs/codecs/dac-16k.yaml`` vs ``dac.model.DAC`` 16 kHz (12 codebooks), same
  protocol; their decode includes ``quantizer.from_codes`` so both start from codes.
* ``--processes N``: each pair in N fresh processes one after the other, then each ratio's
  median and range across them. The paired IQR is the spread within a process; between processes
  the figure moves more (the reference's EnCodec encode by 20 %), because both models share
  glibc's adaptive heap and its state differs from process to process.
* ``--bf16``: each pair again with both models under ``torch.autocast("cpu", torch.bfloat16)``
  (weight norm folded), a separate comparison from the float32 rows.
* ``streaming``: 1-frame chunks (``hop_length`` samples) through ``encode`` then ``decode`` inside
  ``streaming(1)`` for the tiny, EnCodec-like and Mimi-like configs (weight norm folded);
  per-chunk compute as a fraction of the chunk's duration (< 1: real time on this machine).

Peak memory: each (implementation, operation) also runs twice in a fresh child process (Linux):
after the model is built (with the encode that gives decode its input), freed memory is trimmed,
the kernel's resident-set high-water mark is reset (``/proc/self/clear_refs`` = 5), and we
report ``VmHWM`` after both calls minus ``VmRSS`` before them: the operation's peak working
memory (MiB), tables memoised on the first call (our time-major weights) included. The child
runs with ``MALLOC_MMAP_THRESHOLD_`` fixed at 128 KiB, so that glibc maps every large buffer when
it is allocated and unmaps it when it is freed: the peak is that of live tensors, the same in
every run (with glibc's adaptive threshold it moved by up to 100 MiB between runs of one call).
tracemalloc would miss torch's C++ allocations, hence resident memory.
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing as mp
import os
import statistics
import time
from pathlib import Path

import torch

from audiolatent.tokenizers.codec import NeuralCodec, build_codec

CONFIGS = Path(__file__).resolve().parents[1] / "configs" / "codecs"


def params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def fold_torch_weight_norm(model: torch.nn.Module) -> torch.nn.Module:
    """Remove old-style ``torch.nn.utils.weight_norm`` hooks (as encodec and DAC use) in place."""
    for m in model.modules():
        if hasattr(m, "weight_g"):
            torch.nn.utils.remove_weight_norm(m)
    return model


# --- the pairs: (build ours, build theirs, encode/decode callables) --------------------------
def _ours(name: str, fold: bool, winograd: bool = False) -> NeuralCodec:
    torch.manual_seed(0)
    codec = build_codec(CONFIGS / f"{name}.yaml").eval()
    return codec.prepare_for_inference(winograd=winograd) if fold else codec


def ops_ours(name: str, fold: bool, x: torch.Tensor, winograd: bool = False):
    codec = _ours(name, fold, winograd)
    latent = codec.encode(x)
    return codec, (lambda: codec.encode(x)), (lambda: codec.decode(latent))


def ops_encodec(fold: bool, x: torch.Tensor):
    from benchmarks.external import encodec_24khz

    model = encodec_24khz()
    if fold:
        fold_torch_weight_norm(model)
    frames = model.encode(x)
    return model, (lambda: model.encode(x)), (lambda: model.decode(frames))


def ops_dac(fold: bool, x: torch.Tensor):
    from benchmarks.external import dac

    model = dac("16k")
    if fold:
        fold_torch_weight_norm(model)
    codes = model.encode(x)[1]
    return model, (lambda: model.encode(x)), (lambda: model.decode(model.quantizer.from_codes(codes)[0]))


PAIRS = {
    "encodec": ("encodec-24k", ops_encodec, 24000),
    "dac": ("dac-16k", ops_dac, 16000),
}


def _build(pair: str, impl: str, fold: bool, x: torch.Tensor, winograd: bool = False):
    name, theirs, _ = PAIRS[pair]
    return ops_ours(name, fold, x, winograd) if impl == "ours" else theirs(fold, x)


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


def _memory_child(pair: str, impl: str, fold: bool, winograd: bool, seconds: float, op: str, queue) -> None:
    import ctypes

    torch.set_num_threads(2)
    sr = PAIRS[pair][2]
    x = 0.1 * torch.randn(1, 1, int(seconds * sr), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        _, encode, decode = _build(pair, impl, fold, x, winograd)
    ctypes.CDLL("libc.so.6").malloc_trim(0)  # hand freed build-time memory back
    Path("/proc/self/clear_refs").write_text("5")  # reset the peak (VmHWM) to the current RSS
    before = _status_kib("VmRSS")
    with torch.inference_mode():
        # two calls: the first one's one-time set-up and memoised tables count as working memory
        (encode if op == "encode" else decode)()
        (encode if op == "encode" else decode)()
        queue.put(_status_kib("VmHWM") - before)


def peak_memory_mib(pair: str, impl: str, fold: bool, seconds: float, op: str, winograd: bool = False) -> float:
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_memory_child, args=(pair, impl, fold, winograd, seconds, op, queue))
    # a fixed mmap threshold: every large buffer is mapped on allocation and unmapped on free, so
    # the peak RSS is the peak of live tensors, not of what glibc's adaptive heap kept cached
    # (left adaptive, the same call's peak moves by 100 MiB from one process to the next)
    previous = os.environ.get("MALLOC_MMAP_THRESHOLD_")
    os.environ["MALLOC_MMAP_THRESHOLD_"] = str(128 * 1024)
    try:
        proc.start()
    finally:
        if previous is None:
            del os.environ["MALLOC_MMAP_THRESHOLD_"]
        else:
            os.environ["MALLOC_MMAP_THRESHOLD_"] = previous
    value = queue.get()
    proc.join()
    return value / 1024


def bench_pair(pair: str, seconds: float, repeats: int, memory: bool, bf16: bool = False) -> list[dict]:
    """Both models built, then their calls interleaved (ours, theirs, ours, ...) so load drift hits both.
    Prints a line per (mode, operation) and returns them as dicts (``mode``, ``op``, ``ours``,
    ``theirs`` in seconds, ``ratio``).

    ``bf16``: both run under ``torch.autocast("cpu", torch.bfloat16)`` (weight norm folded only),
    oneDNN's bf16 convolutions on CPUs that have them (AVX512-BF16, AMX): a separate comparison,
    never mixed with the float32 rows.
    """
    sr = PAIRS[pair][2]
    x = 0.1 * torch.randn(1, 1, int(seconds * sr), generator=torch.Generator().manual_seed(0))
    # (fold weight norm, Winograd): as built; folded with exact convolutions; folded with Winograd
    # (prepare_for_inference's default). Theirs is the same model in every mode but the first.
    modes = ((True, False),) if bf16 else ((False, False), (True, False), (True, True))
    results = []
    for fold, winograd in modes:
        with torch.no_grad():  # built as a user would load them: parameters are not inference tensors
            built = {impl: _build(pair, impl, fold, x, winograd) for impl in ("ours", "theirs")}
        precision = torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()
        with torch.inference_mode(), precision:
            times = {(impl, op): [] for impl in built for op in ("encode", "decode")}
            for impl, (_, encode, decode) in built.items():  # warm-up
                encode(), decode()
            for _ in range(repeats):
                for op, index in (("encode", 1), ("decode", 2)):
                    for impl in built:
                        start = time.perf_counter()
                        built[impl][index]()
                        times[impl, op].append(time.perf_counter() - start)
        label = ("bf16 autocast" if bf16 else "folded + winograd" if winograd else "folded, exact") if fold else "weight norm"
        if not fold:
            print(f"{pair:8s} params ours {params(built['ours'][0]) / 1e6:.2f}M theirs {params(built['theirs'][0]) / 1e6:.2f}M", flush=True)
        del built
        for op in ("encode", "decode"):
            ours, theirs = statistics.median(times["ours", op]), statistics.median(times["theirs", op])
            # each repeat times ours then theirs back to back: the spread of those paired ratios
            # says how far load on the machine moves the figure
            paired = sorted(t / o for o, t in zip(times["ours", op], times["theirs", op]))
            q1, q3 = statistics.quantiles(paired, n=4)[0], statistics.quantiles(paired, n=4)[2]
            line = (
                f"{pair:8s} {op:6s} {label:18s} {seconds:g}s audio: median ours {ours * 1000:7.1f} ms theirs {theirs * 1000:7.1f} ms "
                f"ratio theirs/ours {theirs / ours:4.2f}x (paired ratios: median {statistics.median(paired):4.2f}, "
                f"IQR {q1:4.2f}-{q3:4.2f}, n={len(paired)})  RTF ours {ours / seconds:.3f}"
            )
            if memory and fold and not bf16:
                line += "  peak RSS +MiB ours {:.0f} theirs {:.0f}".format(
                    peak_memory_mib(pair, "ours", fold, seconds, op, winograd), peak_memory_mib(pair, "theirs", fold, seconds, op)
                )
            print(line, flush=True)
            results.append({"mode": label, "op": op, "ours": ours, "theirs": theirs, "ratio": theirs / ours})
    return results


def _pair_child(pair: str, seconds: float, repeats: int, memory: bool, queue) -> None:
    torch.set_num_threads(2)
    queue.put(bench_pair(pair, seconds, repeats, memory))


def bench_pair_processes(pair: str, seconds: float, repeats: int, memory: bool, processes: int) -> None:
    """:func:`bench_pair` in ``processes`` fresh processes, one after the other, then the spread of
    each ratio across them.

    Within one process the paired ratios are tight, yet the figure moves between processes: both
    models share glibc's adaptive heap, whose state (which freed buffers it keeps, which it hands
    back to the kernel to be faulted in again) differs from one process to the next, and the
    reference's EnCodec encode moved by 20 % that way. The spread across processes is the one a
    reader re-running the benchmark will see. Peak memory is measured in the first process only.
    """
    ctx = mp.get_context("spawn")
    runs = []
    for i in range(processes):
        print(f"{pair:8s} process {i + 1} of {processes}", flush=True)
        queue = ctx.Queue()
        proc = ctx.Process(target=_pair_child, args=(pair, seconds, repeats, memory and i == 0, queue))
        proc.start()
        runs.append(queue.get())
        proc.join()
    for j, row in enumerate(runs[0]):
        ratios = sorted(run[j]["ratio"] for run in runs)
        ours = [run[j]["ours"] * 1000 for run in runs]
        theirs = [run[j]["theirs"] * 1000 for run in runs]
        print(
            f"{pair:8s} {row['op']:6s} {row['mode']:18s} over {processes} processes: ratio median {statistics.median(ratios):4.2f}x "
            f"range {ratios[0]:4.2f}-{ratios[-1]:4.2f}  ours {min(ours):.1f}-{max(ours):.1f} ms  theirs {min(theirs):.1f}-{max(theirs):.1f} ms",
            flush=True,
        )


def bench_streaming(names: list[str], chunks: int) -> None:
    for name in names:
        codec = _ours(name, fold=True)
        hop, sr = codec.hop_length, codec.sample_rate
        x = 0.1 * torch.randn(1, 1, hop * (chunks + 2), generator=torch.Generator().manual_seed(0))
        enc_times, dec_times = [], []
        with torch.inference_mode(), codec.streaming(1):
            for i in range(chunks + 2):
                start = time.perf_counter()
                latent = codec.encode(x[..., i * hop : (i + 1) * hop])
                mid = time.perf_counter()
                codec.decode(latent)
                end = time.perf_counter()
                if i >= 2:  # first calls allocate state
                    enc_times.append(mid - start)
                    dec_times.append(end - mid)
        chunk_ms = 1000 * hop / sr
        enc, dec = statistics.median(enc_times) * 1000, statistics.median(dec_times) * 1000
        print(
            f"stream   {name:16s} 1 frame = {chunk_ms:6.1f} ms: encode {enc:6.2f} ms + decode {dec:6.2f} ms "
            f"= {(enc + dec) / chunk_ms:.3f} of real time ({codec.num_parameters() / 1e6:.1f}M params)",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", choices=["encodec", "dac", "streaming"], action="append")
    parser.add_argument("--seconds", type=float, default=10.0, help="audio length for encodec")
    parser.add_argument("--dac-seconds", type=float, default=2.0, help="audio length for dac (74M params: 2 s keeps the run short)")
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--chunks", type=int, default=50, help="streamed frames per config")
    parser.add_argument("--no-memory", action="store_true")
    parser.add_argument("--bf16", action="store_true", help="also compare both under CPU bf16 autocast")
    parser.add_argument("--processes", type=int, default=1,
                        help="run each pair in this many fresh processes and report the ratios' spread across them")
    args = parser.parse_args()
    torch.set_num_threads(2)
    todo = args.only or ["encodec", "dac", "streaming"]
    if args.processes < 1:
        parser.error(f"--processes must be at least 1, got {args.processes}")
    if args.processes > 1:
        for pair, seconds in (("encodec", args.seconds), ("dac", args.dac_seconds)):
            if pair in todo:
                bench_pair_processes(pair, seconds, args.repeats, not args.no_memory, args.processes)
        todo = [t for t in todo if t == "streaming"]
    if "encodec" in todo:
        bench_pair("encodec", args.seconds, args.repeats, not args.no_memory)
        if args.bf16:
            bench_pair("encodec", args.seconds, args.repeats, False, bf16=True)
    if "dac" in todo:
        bench_pair("dac", args.dac_seconds, args.repeats, not args.no_memory)
        if args.bf16:
            bench_pair("dac", args.dac_seconds, args.repeats, False, bf16=True)
    if "streaming" in todo:
        bench_streaming(["tiny-16k", "encodec-24k", "mimi-like-24k"], args.chunks)


if __name__ == "__main__":
    main()
