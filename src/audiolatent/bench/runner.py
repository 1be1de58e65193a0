"""The bench: every tokenizer on the four axes (rate, distortion, modelability, streaming).

:func:`run_bench` takes tokenizer names (or checkpoint paths) and a dataset (default: the
built-in corpus — ``speech_real``, ``speech_aligned`` and ``music``, each with a train and a test
split) and, per tokenizer:

1. **distortion** — encodes and decodes every scored file (the test split; ``split="train"`` or
   ``"all"`` score the train split or every file) at the tokenizer's rate (mono), aligns
   the reconstruction to the input by FFT cross-correlation (:func:`audiolatent.bench.align.align`,
   lags up to ``max(4 hops, 50 ms)``; the delay is reported) and computes the distortion metrics
   at 16 kHz (both signals resampled; PESQ-WB and STOI are defined there). Metrics are chosen from
   their metadata (:func:`audiolatent.bench.metrics.available_metrics`): speech-only metrics
   skip music, WER needs transcripts; every metric not computed is listed in
   ``distortion.skipped`` with the reason. ``distortion.metric_files`` counts, per metric, the files
   its mean is over (``scored``) and lists those where it is undefined (``unscored``: too short
   for STOI, no voiced frame for F0), which are left out of the mean. Values are means over files, per corpus and overall
   (the mean over all files where the metric applies).
2. **rate** — :func:`audiolatent.bench.rate.rate_metrics` over the scored files' latents;
   ``rate.bits_per_second`` is the nominal rate of discrete latents (None for continuous ones,
   whose ``values_per_second`` is reported instead) and ``rate.entropy_bits_per_second`` the
   order-0 entropy-coded rate.
3. **streaming** — :func:`audiolatent.bench.streaming.measure_streaming` (for tokenizers with
   ``deterministic = False`` such as Codec2: the encoder probed, the round trip declared,
   marked ``probed: False``).
4. **modelability** — :func:`audiolatent.bench.modelability.measure_modelability`, probes trained
   on the train split's latents (all corpora pooled) and scored on the test split's, with the
   phoneme probe on the files that carry phone alignments. Skipped for the ``classical``
   family (their bitstream bytes are not a latent for a second-stage model), and with
   ``split="train"`` or ``"all"``: probes are scored on held-out files, and those splits hold
   the probes' own train files.

``results.json`` and ``report.html`` are written atomically into ``out`` after every tokenizer
(``run.complete`` is False until the last one), so a stopped run keeps the tokenizers it finished.
Re-running into the same ``out`` reuses every tokenizer whose ``reuse_key`` (config hash, weights,
data files, scored split, preset, metrics, audiolatent version) is unchanged, listed in ``run.reused``;
``force=True`` recomputes. ``results.json``::

    {"tokenizers": {NAME: {"rate": {...}, "distortion": {...}, "streaming": {...},
                           "modelability": {...}, "config": {...}, "config_hash": "...",
                           "family": "...", "examples": [...], "seconds": {...}}},
     "data": {CORPUS: {"speech": bool, "splits": {SPLIT: {"files": n, "seconds": s}},
                       "scored": {"split": "test", "files": n, "seconds": s, "available_files": n_all}}},
     "run": {"environment": {...}, "seconds": total, "preset": {...}, "quick": bool, "metrics": [...],
             "split": "test"}}

``data.CORPUS.splits`` counts the files the run reads, per split of the data; ``scored`` the ones
distortion and rate are measured on (``available_files``: in the chosen split before the preset's cap).

How much is measured is a **preset** (:data:`PRESETS`): ``standard`` (the default: the built-ins
on the built-in corpus in under 10 minutes on a 2-core CPU), ``quick`` (a smoke test) and
``full`` (every test file, the full probe budget, ASR). The preset is stored in ``run.preset``.

Reproduce with the ``command`` stored in ``run.environment``.
"""

from __future__ import annotations

import json
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from tqdm import tqdm

from audiolatent.bench.align import align
from audiolatent.bench.metrics import MetricUnavailable, available_metrics
from audiolatent.bench.modelability import DEFAULT_BUDGET, QUICK_BUDGET, STANDARD_BUDGET, ProbeBudget, measure_modelability
from audiolatent.bench.rate import rate_metrics
from audiolatent.bench.streaming import measure_streaming
from audiolatent.core.atomic import atomic_path
from audiolatent.core.audio import resample, save_audio
from audiolatent.core.config import to_dict
from audiolatent.core.errors import ConfigError, OutputError
from audiolatent.core.provenance import environment
from audiolatent.core.registry import list_tokenizers, load_tokenizer
from audiolatent.data import AudioDataset, DataError, builtin_corpus, entries_from_path
from audiolatent.tokenizers import classical as _classical  # noqa: F401  (registers opus-*, codec2-*)
from audiolatent.tokenizers.long import decode_any, encode_any

__all__ = ["DEFAULT_TOKENIZERS", "BUILTIN_CORPORA", "PRESETS", "BenchPreset", "run_bench", "format_table", "load_bench_data"]

DEFAULT_TOKENIZERS = ("mel-16k", "dmel-16k", "codec-16k-default", "opus-6k", "codec2-3200")
#: built-in corpora and whether they are speech
BUILTIN_CORPORA = {"speech_real": True, "speech_aligned": True, "music": False}
METRIC_RATE = 16000
#: envelope window of the alignment (bench/align.py): the delay is found on 5 ms RMS envelopes, then refined
ALIGN_ENVELOPE_SECONDS = 0.005
#: the report plays one clip per corpus, at least this long
EXAMPLE_MIN_SECONDS = 1.5


@dataclass(frozen=True)
class BenchPreset:
    """How much a bench run measures (the same for every tokenizer of the run).

    Attributes:
        name: ``quick``, ``standard`` or ``full``.
        test_seconds: scored (test) files per corpus are taken in manifest order until this many
            seconds (None: every file).
        budget: the modelability probes' budget.
        streaming: keyword arguments of :func:`audiolatent.bench.streaming.measure_streaming`.
        excluded: distortion metrics left out, with the reason.
    """

    name: str
    test_seconds: float | None
    budget: ProbeBudget
    streaming: dict = field(default_factory=dict)
    excluded: dict = field(default_factory=dict)


_NO_ASR = "offline ASR takes minutes of CPU per tokenizer; run with --full"
PRESETS = {
    "quick": BenchPreset("quick", 12.0, QUICK_BUDGET, dict(seconds=1.0, probe_seconds=0.5, repeats=1, max_chunks=40),
                         {"asr_wer": _NO_ASR}),
    "standard": BenchPreset("standard", 60.0, STANDARD_BUDGET, dict(seconds=2.0, probe_seconds=1.0, repeats=2, max_chunks=100),
                            {"asr_wer": _NO_ASR}),
    "full": BenchPreset("full", None, DEFAULT_BUDGET),
}


#: what ``split=`` of :func:`run_bench` (``bench --split``) may score
SCORED_SPLITS = ("test", "train", "all")


def load_bench_data(data=None, split: str = "test") -> dict[str, dict]:
    """``{corpus: {"speech": bool, "splits": {split: [ManifestEntry]}, "scored": [ManifestEntry]}}``.

    ``data`` None: the built-in corpus. Otherwise a manifest, folder or file; its entries are
    split by their ``split`` field (folders: :func:`audiolatent.data.split_of` of the stem). It
    is treated as speech (speech-only metrics apply; pass ``metrics`` to restrict) unless every
    row says ``"speech": false`` (as ``audiolatent data prepare musdb`` writes).

    ``split`` chooses the ``scored`` files, those distortion and rate are measured on: ``"test"``
    the test split (when no file is ``test``, every file is, and there is no train split, so no
    probes); ``"train"`` the train split (a DataError when there is none); ``"all"`` every file.
    """
    if split not in SCORED_SPLITS:
        raise ConfigError(f"unknown bench split {split!r}: choose one of {', '.join(SCORED_SPLITS)}")
    if data is None:
        sources = {name: (read_entries(builtin_corpus(name)), speech) for name, speech in BUILTIN_CORPORA.items()}
    else:
        entries = read_entries(data)
        speech = not all(e.extra.get("speech") is False for e in entries)
        sources = {Path(data).stem or "data": (entries, speech)}
    out = {}
    for name, (entries, speech) in sources.items():
        splits = _by_split(entries)
        if split == "test" and "test" not in splits:  # e.g. one file: measure every file, but train no probe on them too
            splits = {"test": list(entries)}
        if split == "all":
            scored = list(entries)
        elif split in splits:
            scored = splits[split]
        else:
            raise DataError(f"{data if data is not None else name}: no entries in split {split!r} "
                            f"(splits present: {', '.join(sorted(splits))}); try --split all")
        out[name] = {"speech": speech, "splits": splits, "scored": scored}
    return out


def _by_split(entries: list) -> dict[str, list]:
    splits: dict[str, list] = {}
    for e in entries:
        splits.setdefault(e.split, []).append(e)
    return splits


def read_entries(path) -> list:
    return entries_from_path(path)


def _family(name: str) -> str:
    for entry in list_tokenizers():
        if entry.name == name:
            return entry.family
    return "checkpoint"


def _select_metrics(corpus_speech: bool, has_text: bool, requested, excluded: dict) -> tuple[list, dict]:
    """Distortion metrics to compute on a corpus, and ``{name: reason}`` for the ones left out."""
    chosen, skipped = [], {}
    for m in available_metrics("distortion", has_reference=True, has_transcript=True, has_phones=True,
                               speech=True, installed_only=False):
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


@torch.inference_mode()
def _encode_split(tok, entries, progress: bool, desc: str):
    latents, audios = [], []
    ds = AudioDataset(entries, sample_rate=tok.sample_rate, mono=True)
    for i in tqdm(range(len(ds)), desc=desc, disable=not progress, leave=False):
        audio = ds[i]["audio"][None]
        latents.append(encode_any(tok, audio))
        audios.append(audio[0])
    return latents, audios


@torch.inference_mode()
def _distortion(tok, name, corpora, requested, excluded, progress, out_dir, n_examples):
    per_corpus, skipped, delays, examples, counts = {}, {}, [], [], {}
    values: dict[str, list[float]] = {}
    latents, audios, phones, timing = [], [], [], {"encode": 0.0, "decode": 0.0, "metrics": 0.0, "audio": 0.0}
    for corpus, info in corpora.items():
        entries = info["scored"]
        if not entries:
            continue
        has_text = all(e.text for e in entries)
        metrics, why = _select_metrics(info["speech"], has_text, requested, excluded)
        for metric, reason in why.items():
            skipped.setdefault(metric, {})[corpus] = reason
        sums: dict[str, list[float]] = {m.name: [] for m in metrics}
        ds = AudioDataset(entries, sample_rate=tok.sample_rate, mono=True)
        max_lag = max(4 * tok.hop_length, tok.sample_rate // 20)
        for i in tqdm(range(len(ds)), desc=f"{name} / {corpus}", disable=not progress, leave=False):
            entry = ds.entries[i]
            audio = ds[i]["audio"][None]
            t0 = time.perf_counter()
            latent = encode_any(tok, audio)
            t1 = time.perf_counter()
            recon = decode_any(tok, latent).float().cpu()
            t2 = time.perf_counter()
            timing["encode"] += t1 - t0
            timing["decode"] += t2 - t1
            timing["audio"] += audio.shape[-1] / tok.sample_rate
            latents.append(latent)
            audios.append(audio[0])
            phones.append(entry.phones)
            ref, est, delay = align(audio, recon, max_lag, envelope_window=round(ALIGN_ENVELOPE_SECONDS * tok.sample_rate))
            delays.append(delay)
            ref16, est16 = resample(ref, tok.sample_rate, METRIC_RATE), resample(est, tok.sample_rate, METRIC_RATE)
            for m in metrics:
                extras = {"transcripts": [entry.text]} if m.needs_transcript else {}
                try:
                    value = float(m(ref16, est16, METRIC_RATE, **extras)[0])
                except MetricUnavailable as exc:
                    skipped.setdefault(m.name, {})[corpus] = str(exc)
                    continue
                sums[m.name].append(value)
                values.setdefault(m.name, []).append(value)
                count = counts.setdefault(m.name, {"scored": 0, "unscored": []})
                if value == value:  # NaN: the metric is undefined on this file (too short, no voiced frame)
                    count["scored"] += 1
                else:
                    count["unscored"].append(f"{corpus}/{entry.id}")
            timing["metrics"] += time.perf_counter() - t2
            # one clip per corpus, long enough to listen to
            corpus_has_example = any(e["corpus"] == corpus for e in examples)
            if out_dir is not None and len(examples) < n_examples and not corpus_has_example and entry.duration >= EXAMPLE_MIN_SECONDS:
                folder = Path(out_dir) / "examples" / _safe(name)
                stem = _safe(entry.id)
                save_audio(folder / f"{stem}.orig.wav", audio[0], tok.sample_rate)
                save_audio(folder / f"{stem}.recon.wav", recon[0], tok.sample_rate)
                examples.append({"id": entry.id, "corpus": corpus,
                                 "original": f"examples/{_safe(name)}/{stem}.orig.wav",
                                 "reconstruction": f"examples/{_safe(name)}/{stem}.recon.wav"})
        per_corpus[corpus] = {k: _mean(v) for k, v in sums.items()}
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


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in str(name))


def run_bench(
    tokenizers,
    data=None,
    out=None,
    metrics=None,
    quick: bool = False,
    progress: bool = True,
    examples: int = 3,
    preset: str | BenchPreset = "standard",
    pretrained: bool = True,
    force: bool = False,
    live_warnings: bool = True,
    split: str = "test",
) -> dict:
    """Place each tokenizer on the four axes; see the module docstring for what is measured.

    Args:
        tokenizers: names or checkpoint paths (each loaded with ``load_tokenizer``).
        data: None (built-in corpus) or a manifest / folder / file.
        out: directory for ``results.json`` and example audio (None: nothing written).
        metrics: names of distortion metrics to compute (None: all that apply); the axis names
            ``rate``, ``streaming``, ``modelability`` in the list keep those axes (when the list
            names none of them, all three are kept).
        quick: shorthand for ``preset="quick"``.
        progress: tqdm bars per stage.
        examples: example clips saved per tokenizer (for the report).
        preset: a name in :data:`PRESETS` or a :class:`BenchPreset` (how much is measured).
            Metrics named in ``metrics`` are computed even when the preset leaves them out.
        pretrained: False builds external adapters with random weights (their rows are then
            named ``NAME (random weights)``; ``weights`` in each row says what was loaded).
        force: recompute every tokenizer even when ``out`` holds its results for the same config,
            weights, data and preset (otherwise those are reused and listed in ``run.reused``).
        live_warnings: False collects the run's warnings (short files, unvoiced F0, ...) instead of
            printing them between progress bars; ``run.warnings`` always summarises them.
        split: the files distortion and rate are measured on: ``"test"`` (the test split),
            ``"train"`` or ``"all"`` (every file; see :func:`load_bench_data`). With ``"train"`` and
            ``"all"`` no file is held out, so the probes are skipped (``modelability.skipped``
            says so). Recorded in ``run.split`` and part of the reuse key.

    With ``out``, ``results.json`` and ``report.html`` are rewritten after each tokenizer (with
    ``run.complete`` False until the last), so a stopped run keeps what it finished.

    Returns:
        The results dict written to ``results.json``.
    """
    start = time.perf_counter()
    requested = None if metrics is None else set(metrics)
    axes = {"rate", "streaming", "modelability"}
    if requested is not None:
        known = {m.name for m in available_metrics("distortion", has_reference=True, has_transcript=True, has_phones=True,
                                                   speech=True, installed_only=False)}
        unknown = sorted(requested - known - axes)
        if unknown:
            raise ConfigError(f"unknown metric(s) {', '.join(map(repr, unknown))}: choose from "
                              f"{', '.join(sorted(known | axes))}")
    if out is not None and Path(out).exists() and not Path(out).is_dir():
        raise OutputError(f"bench --out {out} is a file; give a folder for results.json, report.html and examples")
    if requested is not None and requested & axes:
        axes = requested & axes
    distortion_requested = None if requested is None else (requested - {"rate", "streaming", "modelability"}) or None
    corpora = load_bench_data(data, split)
    if quick:
        preset = "quick"
    if isinstance(preset, str):
        if preset not in PRESETS:
            raise ValueError(f"unknown bench preset {preset!r}: choose one of {', '.join(PRESETS)}")
        preset = PRESETS[preset]
    budget = preset.budget
    results: dict = {"tokenizers": {}, "data": {}, "run": {}}
    for info in corpora.values():
        info["available"] = len(info["scored"])
        if preset.test_seconds is not None:
            info["scored"] = _first_seconds(info["scored"], preset.test_seconds)
        if split == "test":
            info["splits"]["test"] = info["scored"]
        else:  # no probes: the run reads only the files it scores
            info["splits"] = _by_split(info["scored"])
    for corpus, info in corpora.items():
        results["data"][corpus] = {
            "speech": info["speech"],
            "splits": {s: {"files": len(e), "seconds": round(sum(x.duration for x in e), 3)} for s, e in sorted(info["splits"].items())},
            "scored": {"split": split, "files": len(info["scored"]), "seconds": round(sum(x.duration for x in info["scored"]), 3),
                       "available_files": info["available"]},  # more than files: the preset's cap cut the split
            "has_text": {s: all(x.text for x in e) for s, e in info["splits"].items()},
            "has_phones": {s: all(x.phones for x in e) for s, e in info["splits"].items()},
        }
    out_dir = Path(out) if out is not None else None
    data_key = _data_fingerprint(corpora)
    previous = {} if force or out_dir is None else _previous_rows(out_dir / "results.json")
    reused: list[str] = []

    def run_info(done: bool) -> dict:
        return {"environment": environment(), "seconds": round(time.perf_counter() - start, 3),
                "preset": {**asdict(preset), "budget": asdict(budget)}, "quick": preset.name == "quick",
                "metrics": sorted(requested) if requested else None, "split": split, "tokenizers": [str(t) for t in tokenizers],
                "reused": list(reused), "complete": done}

    collected: list = []
    with warnings.catch_warnings():
        shown = warnings.showwarning

        def record(message, category, filename, lineno, file=None, line=None):
            collected.append(warnings.WarningMessage(message, category, filename, lineno, file, line))
            if live_warnings:
                shown(message, category, filename, lineno, file, line)

        if not live_warnings:
            warnings.simplefilter("always")  # count every occurrence; nothing is printed
        warnings.showwarning = record
        for name in tqdm(list(tokenizers), desc="tokenizers", disable=not progress):
            name = str(name)
            t_start = time.perf_counter()
            tok = load_tokenizer(name, pretrained=pretrained)
            family = _family(name.partition("@")[0])
            weights = getattr(tok, "weights", None)
            if getattr(tok, "names_itself", False):  # an adapter: "encodec-24k (random weights)", never the bare name
                name = tok.name
            key = _reuse_key(tok.config_hash, weights, data_key, preset, requested, split)
            if previous.get(name, {}).get("reuse_key") == key:  # same config, weights, data, preset: nothing to redo
                results["tokenizers"][name] = previous[name]
                reused.append(name)
                if progress:
                    tqdm.write(f"{name}: reused from {out_dir / 'results.json'} (same config, weights, data and preset)")
                continue
            row: dict = {"family": family, "kind": tok.kind, "config": to_dict(tok.config), "config_hash": tok.config_hash,
                         "sample_rate": tok.sample_rate, "frame_rate": tok.frame_rate, "hop_length": tok.hop_length,
                         "weights": weights, "reuse_key": key}
            distortion, test_latents, test_audio, test_phones, row["examples"], timing = _distortion(
                tok, name, corpora, distortion_requested, preset.excluded, progress, out_dir, examples)
            row["distortion"] = distortion
            rate = rate_metrics(test_latents)
            rate["bits_per_second"] = rate["nominal_bits_per_second"] if test_latents[0].is_discrete else None
            rate.update(encode_rtf=timing["encode"] / timing["audio"], decode_rtf=timing["decode"] / timing["audio"])
            row["rate"] = rate if "rate" in axes else {"bits_per_second": rate["bits_per_second"], "skipped": "not requested"}
            if "streaming" in axes:
                if progress:
                    tqdm.write(f"{name}: streaming probe")
                row["streaming"] = measure_streaming(tok, **preset.streaming)
            else:
                row["streaming"] = {"causal": None, "algorithmic_latency_ms": None, "skipped": "not requested"}
            row["modelability"] = _modelability(tok, name, family, corpora, axes, budget, test_latents, test_audio, test_phones,
                                                progress, split)
            row["seconds"] = {**{k: round(v, 3) for k, v in timing.items()}, "total": round(time.perf_counter() - t_start, 3)}
            results["tokenizers"][name] = row
            if out_dir is not None:  # a stopped run keeps every tokenizer it finished
                results["run"] = {**run_info(done=False), "warnings": _summarise(collected)}
                _write_results(results, out_dir)
    results["run"] = {**run_info(done=True), "warnings": _summarise(collected)}
    if out_dir is not None:
        _write_results(results, out_dir)
    return results


def _summarise(caught: list) -> list[dict]:
    """Warnings seen during a run, one entry per distinct message with its count, most frequent first."""
    from collections import Counter

    counts = Counter(f"{w.category.__name__}: {w.message}" for w in caught)
    return [{"message": m, "count": n} for m, n in counts.most_common()]


def _write_results(results: dict, out_dir: Path) -> None:
    """``results.json`` (atomic) and ``report.html`` for what is finished so far."""
    from audiolatent.bench.report import write_report

    with atomic_path(out_dir / "results.json") as tmp:
        tmp.write_text(json.dumps(results, indent=2, default=_json_default))
    write_report(results, out_dir)


def _data_fingerprint(corpora: dict) -> str:
    """sha256 of every file the run reads (path, size, modification time, split) and the corpora's kinds."""
    import hashlib

    rows = []
    for corpus, info in sorted(corpora.items()):
        for split, entries in sorted(info["splits"].items()):
            for e in entries:
                try:
                    st = Path(e.path).stat()
                    stamp = (st.st_size, st.st_mtime_ns)
                except OSError:
                    stamp = None
                rows.append([corpus, info["speech"], split, str(e.path), stamp, e.duration])
    return hashlib.sha256(json.dumps(rows, default=str).encode()).hexdigest()[:16]


def _reuse_key(config_hash: str, weights, data_key: str, preset: "BenchPreset", requested, split: str = "test") -> str:
    import hashlib

    from audiolatent import __version__

    blob = json.dumps({"config": config_hash, "weights": weights, "data": data_key, "preset": asdict(preset),
                       "metrics": sorted(requested) if requested else None, "split": split, "version": __version__},
                      sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _previous_rows(path: Path) -> dict:
    """Tokenizer rows of an earlier ``results.json`` in the same folder ({} when there is none or it is unreadable)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        rows = data.get("tokenizers", {})
        return {k: v for k, v in rows.items() if isinstance(v, dict) and "reuse_key" in v}
    except (OSError, ValueError, AttributeError):
        return {}


def _first_seconds(entries: list, seconds: float) -> list:
    out, total = [], 0.0
    for e in entries:
        if total >= seconds:
            break
        out.append(e)
        total += e.duration
    return out


def _json_default(value):
    if isinstance(value, torch.Tensor):
        return value.tolist()
    if hasattr(value, "item"):
        return value.item()
    return str(value)


def _modelability(tok, name, family, corpora, axes, budget, test_latents, test_audio, test_phones, progress,
                  split: str = "test") -> dict:
    empty = {"probe_bits_per_second": None}
    if "modelability" not in axes:
        return {**empty, "skipped": "not requested"}
    if family == "classical":
        return {**empty, "skipped": "classical codec: its bitstream bytes are not a latent for a second-stage model"}
    if split != "test":
        return {**empty, "skipped": f"--split {split} scores the probes' train files too: no held-out split to score "
                                    "the probes on (the default --split test measures modelability)"}
    train_entries = [e for info in corpora.values() for e in info["splits"].get("train", [])]
    train_groups = [corpus for corpus, info in corpora.items() for _ in info["splits"].get("train", [])]
    if not train_entries:
        return {**empty, "skipped": "the data has no train split to train the probes on"}
    train_latents, _ = _encode_split(tok, train_entries, progress, f"{name} / train split")
    bar = tqdm(desc=f"{name} / probes", unit="step", disable=not progress, leave=False)
    with torch.enable_grad(), bar:
        return measure_modelability(tok, train_latents, test_latents, budget=budget, test_audio=test_audio,
                                    phones_train=[e.phones for e in train_entries], phones_test=test_phones,
                                    progress=bar.update if progress else None, train_groups=train_groups)


_SHORT = {"unigram": "uni", "bigram": "bi", "trigram": "tri", "transformer": "tf"}


def _short(estimator: str | None) -> str:
    """``trigram`` -> ``tri`` (several streams: ``bi+tri``)."""
    return "-" if not estimator else "+".join(_SHORT.get(e, e) for e in estimator.split("+"))


def _yes_no(value) -> str:
    return "-" if value is None else ("yes" if value else "NO")


def format_table(results: dict) -> str:
    """One line per tokenizer with the headline number of each axis.

    ``probe kbps``: the headline modelability (lowest held-out bits/s of the estimators), ``est.``
    the estimator that gave it (uni, bi, tri, tf = transformer), ``conv`` whether it moved by
    less than 3 % when the probes' train data was halved, ``ratio`` the headline over the
    train-fitted unigram rate.
    """
    width = max([18] + [len(str(n)) + 1 for n in results["tokenizers"]])
    head = (f"{'tokenizer':<{width}}{'family':<12}{'kbps':>7}{'ent.kbps':>9}{'mel':>7}{'PESQ':>6}{'STOI':>6}{'SI-SNR':>8}"
            f"{'delay':>6}{'causal':>7}{'lat.ms':>7}{'probe kbps':>11}{'est.':>5}{'conv':>5}{'ratio':>6}{'R2':>6}{'FD':>7}{'phone':>6}{'sec':>6}")
    lines = [head, "-" * len(head)]

    def f(v, fmt):
        return "-" if v is None else format(v, fmt)

    for name, r in results["tokenizers"].items():
        rate, dist, st, mod = r["rate"], r["distortion"], r["streaming"], r["modelability"]
        bps = rate.get("bits_per_second")
        ent = rate.get("entropy_bits_per_second") if bps else None
        probe = mod.get("probe_bits_per_second")
        phone = mod.get("phoneme_accuracy")
        phone = max(phone.values()) if phone else None
        lines.append(
            f"{name:<{width}}{r['family']:<12}{f(bps and bps / 1000, '7.2f'):>7}{f(ent and ent / 1000, '9.2f'):>9}"
            f"{f(dist.get('mel_distance'), '7.3f'):>7}{f(dist.get('pesq_wb'), '6.2f'):>6}{f(dist.get('stoi'), '6.3f'):>6}"
            f"{f(dist.get('si_snr'), '8.1f'):>8}{f(dist['delay_samples']['median'], 'd'):>6}"
            f"{str(st.get('causal')):>7}{f(st.get('algorithmic_latency_ms'), '7.1f'):>7}"
            f"{f(probe and probe / 1000, '11.2f'):>11}{_short(mod.get('estimator')):>5}{_yes_no(mod.get('converged')):>5}"
            f"{f(mod.get('ratio_to_entropy'), '6.2f'):>6}{f(mod.get('r2'), '6.2f'):>6}"
            f"{f(mod.get('frechet_logmel'), '7.2f'):>7}{f(phone, '6.2f'):>6}{f(r['seconds']['total'], '6.0f'):>6}"
        )
    data = "; ".join(
        f"{k}: " + ", ".join(f"{s} {v['files']} files {v['seconds']:.0f} s" for s, v in d["splits"].items())
        for k, d in results["data"].items()
    )
    lines.append(f"data: {data}")
    preset = results["run"].get("preset", {}).get("name", "quick" if results["run"].get("quick") else "?")
    lines.append(f"run: {results['run']['seconds']:.0f} s, preset {preset}, scored split {results['run'].get('split', 'test')}")
    return "\n".join(lines)
