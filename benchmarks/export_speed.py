"""Exported streaming step of ``codec-16k-default`` against the eager one: cost per 20 ms chunk.

Run (the README's export speed figures come from this command)::

    PYTHONPATH=src python benchmarks/export_speed.py                 # 1 thread, 5 s of speech
    PYTHONPATH=src python benchmarks/export_speed.py --threads 2 --seconds 3

Input: the first ``--seconds`` of the test split of the built-in ``speech_real`` corpus, cut into
20 ms chunks (320 samples, one frame), as in ``benchmarks/streaming_realtime.py``. Three steps are
timed in the same process, under ``torch.inference_mode``, with ``time.perf_counter``:

* ``eager``: ``codec.decode(codec.encode(chunk))`` inside ``with codec.streaming(1):`` (the shipped
  path: one-frame kernels, int8 weights through FBGEMM's fp16 GEMM);
* ``torch.export``: the program written by ``audiolatent export codec-16k-default DIR --format
  export``, loaded back (``torch.export.load(...).module()``), state passed explicitly;
* ``torchscript``: the same step traced by ``torch.jit.trace`` and loaded back with ``torch.jit.load``.

Each step streams the whole input ``--rounds`` times (fresh state each round; rounds of the three
steps interleaved, so a change in the machine's load hits all three); the first chunk of a round
is left out, and the median and p95 are over the chunks of all rounds. ``ratio`` is the median
over the eager median. The last columns compare each step's output with the eager stream: codes
identical, and the largest absolute difference of the audio.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from streaming_realtime import CHUNK, NAME, _speech  # noqa: E402  (same input as the real-time benchmark)


def _eager(codec, chunks):
    import torch

    times, codes, audio = [], [], []
    with codec.streaming(1):
        for chunk in chunks:
            start = time.perf_counter()
            latent = codec.encode(chunk)
            out = codec.decode(latent)
            times.append(time.perf_counter() - start)
            codes.append(latent.streams[0].values)
            audio.append(out)
    return times, torch.cat(codes, -1), torch.cat(audio, -1)


def _exported(step, chunks):
    import torch

    times, codes, audio = [], [], []
    state = step.initial_state()
    for chunk in chunks:
        start = time.perf_counter()
        c, out, *state = step(chunk, *state)
        times.append(time.perf_counter() - start)
        codes.append(c)
        audio.append(out)
    return times, torch.cat(codes, -1), torch.cat(audio, -1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    import audiolatent as al
    from audiolatent.tokenizers.export import export_streaming_step, load_exported_step

    audio = _speech(args.seconds)
    codec = al.load_tokenizer(NAME)
    chunks = [audio[..., i : i + CHUNK] for i in range(0, audio.shape[-1], CHUNK)]
    steps = {}
    with tempfile.TemporaryDirectory() as tmp:
        for fmt, label in (("export", "torch.export"), ("torchscript", "torchscript")):
            start = time.perf_counter()
            export_streaming_step(codec, Path(tmp) / fmt, fmt)
            steps[label] = (load_exported_step(Path(tmp) / fmt), time.perf_counter() - start)
    times: dict[str, list[float]] = {"eager": [], **{label: [] for label in steps}}
    results = {}
    load = os.getloadavg()[0]
    with torch.inference_mode():
        for _ in range(args.rounds):
            t, *results["eager"] = _eager(codec, chunks)
            times["eager"] += t[1:]
            for label, (step, _) in steps.items():
                t, *results[label] = _exported(step, chunks)
                times[label] += t[1:]
    budget = 1e3 * CHUNK / 16000
    eager_median = statistics.median(times["eager"])
    print(f"{NAME}, {CHUNK}-sample (20 ms) chunks, encode + decode, {args.seconds:g} s of speech_real test x "
          f"{args.rounds} rounds; {args.threads} thread(s), {os.cpu_count()} CPUs, load {load:.2f}, torch {torch.__version__}")
    print("| step | median ms (of 20 ms) | p95 ms | ratio to eager | export + load s | codes equal | max abs diff vs eager |")
    print("|---|---|---|---|---|---|---|")
    for label, ts in times.items():
        ms = sorted(1e3 * t for t in ts)
        median, p95 = statistics.median(ms), ms[int(0.95 * (len(ms) - 1))]
        codes, out = results[label]
        same = bool(torch.equal(codes, results["eager"][0]))
        diff = float((out - results["eager"][1]).abs().max())
        made = f"{steps[label][1]:.1f}" if label in steps else "-"
        print(f"| {label} | {median:.2f} ({median / budget:.2f}) | {p95:.2f} | {median / 1e3 / eager_median:.2f} | "
              f"{made} | {same} | {diff:.1e} |")


if __name__ == "__main__":
    main()
