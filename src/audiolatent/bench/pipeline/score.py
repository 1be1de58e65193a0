"""The distortion stage of the bench pipeline: every scored file encoded, decoded, aligned and scored.

:func:`score_distortion` runs :func:`score_file` on each scored file (under ``torchrun``, every
``world_size``-th file on each rank), gathers the per-file records, puts them back in file order
and only then takes the means, so sharded and single-process runs give the same figures.
Latents come from the encode stage's cache (:mod:`audiolatent.bench.pipeline.encode`) when a
file was encoded before by the same tokenizer and weights.
"""

from __future__ import annotations

import time
from pathlib import Path

import torch
from tqdm import tqdm

from audiolatent.bench.align import align
from audiolatent.bench.metrics import MetricUnavailable, available_metrics
from audiolatent.bench.pipeline.encode import LatentCache, encode_audio
from audiolatent.core.audio import resample, save_audio
from audiolatent.data import AudioDataset
from audiolatent.tokenizers.long import decode_any

__all__ = ["METRIC_RATE", "ALIGN_ENVELOPE_SECONDS", "EXAMPLE_MIN_SECONDS", "select_metrics", "score_file",
           "score_distortion", "safe_name"]

METRIC_RATE = 16000
#: envelope window of the alignment (bench/align.py): the delay is found on 5 ms RMS envelopes, then refined
ALIGN_ENVELOPE_SECONDS = 0.005
#: the report plays one clip per corpus, at least this long
EXAMPLE_MIN_SECONDS = 1.5


def select_metrics(corpus_speech: bool, has_text: bool, requested, excluded: dict) -> tuple[list, dict]:
    """Distortion metrics to compute on a corpus, and ``{name: reason}`` for the ones left out."""
    chosen, skipped = [], {}
    for m in available_metrics("distortion", has_reference=True, has_transcript=True, has_phones=True,
                               speech=True, installed_only=False, opt_in=True):
        if requested is None and m.opt_in:
            skipped[m.name] = "opt-in (a pretrained network per file); name it in --metrics"
            continue
        if requested is not None and m.name not in requested:
            continue
        if m.speech_only and not corpus_speech:
            skipped[m.name] = "speech-only metric, corpus is not speech"
        elif m.needs_transcript and not has_text:
            skipped[m.name] = "needs transcripts, corpus has none"
        elif m.unavailable_reason():
            skipped[m.name] = m.unavailable_reason()
        elif m.name in excluded and (requested is None or m.name not in requested):
            skipped[m.name] = excluded[m.name]
        else:
            chosen.append(m)
    return chosen, skipped


def _mean(values: list[float]) -> float | None:
    finite = [v for v in values if v == v]
    return sum(finite) / len(finite) if finite else None


def example_files(corpora: dict, n_examples: int) -> set:
    """``(corpus, index)`` of the files whose audio is kept as listening examples: the first file of
    each corpus long enough to listen to, for the first ``n_examples`` corpora that have one."""
    chosen = set()
    for corpus, info in corpora.items():
        if len(chosen) >= n_examples:
            break
        first = next((i for i, e in enumerate(info["scored"]) if e.duration >= EXAMPLE_MIN_SECONDS), None)
        if first is not None:
            chosen.add((corpus, first))
    return chosen


def score_file(tok, ds, corpus: str, index: int, metrics: list, keep_example: bool, cache: LatentCache) -> dict:
    """Encode (or read from ``cache``), decode, align and score one file: everything the means
    need, as a picklable record (so ranks of a ``torchrun`` bench can gather them)."""
    entry = ds.entries[index]
    audio = ds[index]["audio"][None]
    latent, encode_seconds, cached = encode_audio(tok, entry.path, audio, cache, entry.phones)
    t1 = time.perf_counter()
    recon = decode_any(tok, latent).float().cpu().mean(1, keepdim=True)  # a stereo codec's output mixed to mono
    t2 = time.perf_counter()
    max_lag = max(4 * tok.hop_length, tok.sample_rate // 20)
    ref, est, delay = align(audio, recon, max_lag, envelope_window=round(ALIGN_ENVELOPE_SECONDS * tok.sample_rate))
    ref16, est16 = resample(ref, tok.sample_rate, METRIC_RATE), resample(est, tok.sample_rate, METRIC_RATE)
    values, unavailable = {}, {}
    for m in metrics:
        extras = {"transcripts": [entry.text]} if m.needs_transcript else {}
        try:
            values[m.name] = float(m(ref16, est16, METRIC_RATE, **extras)[0])
        except MetricUnavailable as exc:
            unavailable[m.name] = str(exc)
    timing = {"encode": encode_seconds, "decode": t2 - t1, "metrics": time.perf_counter() - t2,
              "audio": audio.shape[-1] / tok.sample_rate, "cached": float(cached)}
    return {"corpus": corpus, "index": index, "id": entry.id, "values": values, "unavailable": unavailable,
            "delay": delay, "latent": latent.to("cpu"), "audio": audio[0].cpu(), "phones": entry.phones, "timing": timing,
            "example": (audio[0].cpu(), recon[0]) if keep_example else None}


@torch.inference_mode()
def score_distortion(tok, name, corpora, requested, excluded, progress, out_dir, n_examples, ctx=None,
                     cache: LatentCache | None = None):
    """Distortion over every scored file. Under ``torchrun`` (``ctx``) each rank scores every
    ``world_size``-th file and the per-file records are gathered and put back in file order
    before any mean, so the figures equal one process's.

    Returns ``(distortion, latents, mono audio, phones, examples, timing)``; ``timing`` sums the
    encode (as measured when each latent was made, cached or not), decode and metric seconds,
    the audio seconds and how many files came from the cache.
    """
    cache = cache if cache is not None else LatentCache(None)
    per_corpus, skipped, delays, examples, counts = {}, {}, [], [], {}
    values: dict[str, list[float]] = {}
    latents, audios, phones = [], [], []
    timing = {"encode": 0.0, "decode": 0.0, "metrics": 0.0, "audio": 0.0, "cached": 0.0}
    rank, world = (ctx.rank, ctx.world_size) if ctx is not None else (0, 1)
    chosen, datasets, jobs = {}, {}, []
    for corpus, info in corpora.items():
        entries = info["scored"]
        if not entries:
            continue
        metrics, why = select_metrics(info["speech"], all(e.text for e in entries), requested, excluded)
        for metric, reason in why.items():
            skipped.setdefault(metric, {})[corpus] = reason
        chosen[corpus] = metrics
        datasets[corpus] = AudioDataset(entries, sample_rate=tok.sample_rate, mono=True)
        jobs += [(corpus, i) for i in range(len(entries))]
    keep = example_files(corpora, n_examples) if out_dir is not None else set()
    mine = jobs[rank::world]
    desc = f"{name} / distortion" + (f" (rank {rank} of {world})" if world > 1 else "")
    records = [score_file(tok, datasets[c], c, i, chosen[c], (c, i) in keep, cache)
               for c, i in tqdm(mine, desc=desc, disable=not progress or rank != 0, leave=False)]
    if ctx is not None:
        records = ctx.gather(records)
    order = {job: n for n, job in enumerate(jobs)}
    records.sort(key=lambda r: order[(r["corpus"], r["index"])])
    sums: dict[str, dict[str, list[float]]] = {c: {m.name: [] for m in chosen[c]} for c in chosen}
    for r in records:
        corpus = r["corpus"]
        for key in timing:
            timing[key] += r["timing"][key]
        latents.append(r["latent"])
        audios.append(r["audio"])
        phones.append(r["phones"])
        delays.append(r["delay"])
        for metric, reason in r["unavailable"].items():
            skipped.setdefault(metric, {})[corpus] = reason
        for metric, value in r["values"].items():
            sums[corpus][metric].append(value)
            values.setdefault(metric, []).append(value)
            count = counts.setdefault(metric, {"scored": 0, "unscored": []})
            if value == value:  # NaN: the metric is undefined on this file (too short, no voiced frame)
                count["scored"] += 1
            else:
                count["unscored"].append(f"{corpus}/{r['id']}")
        if r["example"] is not None and rank == 0:  # one clip per corpus, long enough to listen to
            folder, stem = Path(out_dir) / "examples" / safe_name(name), safe_name(r["id"])
            save_audio(folder / f"{stem}.orig.wav", r["example"][0], tok.sample_rate)
            save_audio(folder / f"{stem}.recon.wav", r["example"][1], tok.sample_rate)
            examples.append({"id": r["id"], "corpus": corpus,
                             "original": f"examples/{safe_name(name)}/{stem}.orig.wav",
                             "reconstruction": f"examples/{safe_name(name)}/{stem}.recon.wav"})
    per_corpus = {corpus: {k: _mean(v) for k, v in metric_values.items()} for corpus, metric_values in sums.items()}
    result = {k: _mean(v) for k, v in values.items()}
    for required in ("pesq_wb", "stoi", "mel_distance"):
        result.setdefault(required, None)
    nonzero = [d for d in delays if d]
    result.update(
        per_corpus=per_corpus,
        delay_samples={"median": sorted(delays)[len(delays) // 2] if delays else None,
                       "min": min(delays, default=None), "max": max(delays, default=None), "nonzero_files": len(nonzero)},
        skipped={m: (next(iter(r.values())) if len(set(r.values())) == 1 and len(r) == len(per_corpus) else r)
                 for m, r in skipped.items() if m not in values or len(r) < len(per_corpus)},
        metric_sample_rate=METRIC_RATE,
        files=len(delays),
        # per metric: the files its mean is over, and those where it is undefined (left out of the mean)
        metric_files=counts,
    )
    return result, latents, audios, phones, examples, timing


def safe_name(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in str(name))
