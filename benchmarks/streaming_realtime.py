"""Real-time streaming of ``codec-16k-default``: per-chunk cost, first chunk, deadline misses.

Run (the README's speed figures for the default codec come from this command)::

    PYTHONPATH=src python benchmarks/streaming_realtime.py                # 1 and 2 threads
    PYTHONPATH=src python benchmarks/streaming_realtime.py --threads 1 --seconds 5

Input: the first ``--seconds`` (10) of the test split of the built-in ``speech_real`` corpus, its
files concatenated in manifest order, cut into 20 ms chunks (320 samples, one frame). A chunk's
time is ``encode`` then ``decode`` inside ``with codec.streaming(1):`` under
``torch.inference_mode``, measured with ``time.perf_counter``.

Every configuration runs in a fresh child process (spawned), so "first chunk" is the first chunk
of a process, as a caller who starts a process and streams sees it:

* ``back-to-back``: the chunks one after another; median, p95, max and the first chunk (ms and
  as a fraction of the chunk's 20 ms), the streamed output checked against the offline one;
* ``no warm-up``: the same with ``streaming(1, warm_up=False)``, the reference for the
  first-chunk stall that the warm-up on entry removes;
* ``real time``: chunk ``i`` is handed over at its wall-clock arrival time (when its last sample
  would have been captured, ``t0 + (i + 1) * 20 ms``), processed as soon as it has arrived and the
  previous one is done; a deadline miss is a chunk whose output is not ready by the arrival of
  the next chunk (its arrival + 20 ms). The codec idles between chunks here, so its weights are
  colder than back-to-back: this is the figure a live caller gets.

References printed beside every configuration, since timings on a shared machine move with its
load: ``os.getloadavg()`` before it, and ``ref mv``, a fixed workload timed in the same child just
before the chunks: one float32 ``torch.mv`` per weight matrix of the codec (the products a
one-frame step computes, through the BLAS kernel a plain ``F.linear`` would use, with nothing
else), so that runs on other machines or at other loads can be compared by ratio.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import statistics
import time

CHUNK = 320  # samples: 20 ms at 16 kHz, one frame of codec-16k-default
NAME = "codec-16k-default"


def _speech(seconds: float):
    import torch

    import audiolatent as al
    from audiolatent.data import builtin_corpus, read_manifest

    want, parts, total = int(seconds * 16000) // CHUNK * CHUNK, [], 0
    for entry in read_manifest(builtin_corpus("speech_real")):
        if entry.split != "test":
            continue
        audio, _ = al.load_audio(entry.path, sample_rate=16000, mono=True)
        parts.append(audio.reshape(1, 1, -1))
        total += parts[-1].shape[-1]
        if total >= want:
            break
    return torch.cat(parts, dim=-1)[..., :want]


def _reference_mv(codec) -> float:
    """Median ms of one matrix-vector product per weight matrix of ``codec`` (2-D view)."""
    import torch

    mats = [p.detach().reshape(p.shape[0], -1) for p in codec.parameters() if p.dim() >= 2]
    vecs = [torch.randn(m.shape[1]) for m in mats]
    times = []
    for _ in range(60):
        start = time.perf_counter()
        for m, v in zip(mats, vecs):
            torch.mv(m, v)
        times.append(time.perf_counter() - start)
    return 1e3 * statistics.median(times[10:])


def _child(threads: int, mode: str, seconds: float, queue) -> None:
    import torch

    torch.set_num_threads(threads)
    import audiolatent as al

    audio = _speech(seconds)
    codec = al.load_tokenizer(NAME)
    reference = _reference_mv(codec)
    chunks = [audio[..., i : i + CHUNK] for i in range(0, audio.shape[-1], CHUNK)]
    times, outputs, misses, late = [], [], 0, 0.0
    with torch.inference_mode():
        with codec.streaming(1, warm_up=mode != "no warm-up"):
            t0 = time.perf_counter()
            for i, chunk in enumerate(chunks):
                if mode == "real time":
                    arrival = t0 + (i + 1) * CHUNK / 16000
                    while (wait := arrival - time.perf_counter()) > 0:  # sleep most of the wait, spin the rest
                        if wait > 0.002:
                            time.sleep(wait - 0.002)
                start = time.perf_counter()
                outputs.append(codec.decode(codec.encode(chunk)))
                done = time.perf_counter()
                times.append(done - start)
                if mode == "real time":
                    deadline = t0 + (i + 2) * CHUNK / 16000
                    if done > deadline:
                        misses += 1
                        late = max(late, done - deadline)
        offline = codec.decode(codec.encode(audio))
    diff = float((torch.cat(outputs, dim=-1) - offline).abs().max())
    queue.put({"times": times, "reference": reference, "misses": misses, "late": late, "diff": diff})


def run(threads: int, mode: str, seconds: float) -> dict:
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    load = os.getloadavg()[0]
    proc = ctx.Process(target=_child, args=(threads, mode, seconds, queue))
    proc.start()
    result = queue.get()
    proc.join()
    result["load"] = load
    return result


def _row(threads: int, mode: str, r: dict) -> str:
    ms = [1e3 * t for t in r["times"]]
    rest = sorted(ms[1:])
    median, p95 = statistics.median(rest), rest[int(0.95 * (len(rest) - 1))]
    budget = 1e3 * CHUNK / 16000
    miss = f"{r['misses']}/{len(ms)} (worst {1e3 * r['late']:.1f} ms late)" if mode == "real time" else "-"
    return (f"| {threads} | {mode} | {median:.2f} ({median / budget:.2f}) | {p95:.2f} ({p95 / budget:.2f}) | "
            f"{max(rest):.1f} | {ms[0]:.2f} ({ms[0] / median:.1f}x) | {miss} | {r['reference']:.2f} | {r['load']:.2f} | "
            f"{r['diff']:.1e} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--modes", nargs="+", default=["back-to-back", "no warm-up", "real time"],
                        choices=["back-to-back", "no warm-up", "real time"])
    args = parser.parse_args()
    print(f"{NAME}, {CHUNK}-sample (20 ms) chunks, encode + decode, {args.seconds:g} s of speech_real test; "
          f"{os.cpu_count()} CPUs")
    print("| threads | mode | median ms (of 20 ms) | p95 ms | max ms | first chunk ms (/ median) | deadline misses "
          "| ref mv ms | load | max abs diff vs offline |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for threads in args.threads:
        for mode in args.modes:
            print(_row(threads, mode, run(threads, mode, args.seconds)), flush=True)


if __name__ == "__main__":
    main()
