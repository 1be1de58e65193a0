"""The bench: every tokenizer on the four axes (rate, distortion, modelability, streaming).

:func:`run_bench` takes tokenizer names (or checkpoint paths) and a dataset (default: the
built-in corpus — ``speech_real``, ``speech_aligned`` and ``music``, each with a train and a test
split) and, per tokenizer:

1. **distortion** — encodes and decodes every scored file (the test split; ``split="train"`` or
   ``"all"`` score the train split or every file) at the tokenizer's rate (mono; a stereo
   tokenizer gets the same signal in both channels and its output is mixed to mono), aligns
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
   order-0 entropy-coded rate; ``rate.tokens_per_second_spread`` (per-file tokens/s: mean, std,
   min, max) and ``rate.by_content`` (tokens/s and bits/s in speech and in silence: the pause
   phones of a file's alignment where it has one, else an energy detector) show where a
   variable-rate latent spends its tokens.
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

import time
import warnings
from dataclasses import asdict
from pathlib import Path

import torch
from tqdm import tqdm

from audiolatent.bench.learned_metrics import metric_weights
from audiolatent.bench.metrics import available_metrics
from audiolatent.bench.modelability import measure_modelability
from audiolatent.bench.pipeline.encode import LatentCache, encode_entries
from audiolatent.bench.pipeline.inputs import (BUILTIN_CORPORA, KINDS, PRESETS, SCORED_SPLITS, BenchPreset, by_split,
                                               first_seconds, load_bench_data)
from audiolatent.bench.pipeline.score import ALIGN_ENVELOPE_SECONDS, METRIC_RATE, score_distortion
from audiolatent.bench.pipeline.store import (data_fingerprint, previous_rows, reuse_key, summarise_warnings,
                                              write_results)
from audiolatent.bench.rate import rate_by_content, rate_metrics, token_spread
from audiolatent.bench.streaming import measure_streaming
from audiolatent.core.config import to_dict
from audiolatent.core.errors import ConfigError, OutputError
from audiolatent.core.provenance import environment
from audiolatent.core.registry import list_tokenizers, load_tokenizer
from audiolatent.tokenizers import classical as _classical  # noqa: F401  (registers opus-*, codec2-*)
from audiolatent.train.distributed import DistributedContext

__all__ = ["DEFAULT_TOKENIZERS", "BUILTIN_CORPORA", "PRESETS", "BenchPreset", "run_bench", "format_table", "load_bench_data",
           "SCORED_SPLITS", "KINDS", "METRIC_RATE", "ALIGN_ENVELOPE_SECONDS"]

DEFAULT_TOKENIZERS = ("mel-16k", "dmel-16k", "codec-16k-default", "opus-6k", "codec2-3200")


def _family(name: str) -> str:
    for entry in list_tokenizers():
        if entry.name == name:
            return entry.family
    return "checkpoint"


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
    kind: str | None = None,
    cache=None,
    device: str | None = None,
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
        kind: what ``data`` is: ``"speech"``, ``"music"`` or ``"audio"`` (None: speech, unless every
            manifest row says ``"speech": false``); speech-only metrics skip music and audio.
        device: where the tokenizers run (None: cpu); under ``torchrun``, ``"cuda"`` is each
            process's GPU (``cuda:LOCAL_RANK``, ranks joined over nccl). Audio is read and scored
            on the CPU; latents come back to the CPU for the rate, modelability and cache.
        cache: where the encode stage keeps latents (None: :func:`~audiolatent.bench.pipeline.encode.default_bench_cache_dir`;
            a folder; False: no cache). ``run.cache`` counts its hits and misses per tokenizer.

    With ``out``, ``results.json`` and ``report.html`` are rewritten after each tokenizer (with
    ``run.complete`` False until the last), so a stopped run keeps what it finished.

    Returns:
        The results dict written to ``results.json``.
    """
    start = time.perf_counter()
    if device is not None:
        from audiolatent.core.device import resolve_device

        resolve_device(device)  # a clear error before any process group or model
    ctx = DistributedContext(device=device or "cpu")  # under torchrun: shard the scored files over ranks
    try:
        return _run_bench(ctx, start, tokenizers, data, out, metrics, quick, progress and ctx.is_main, examples, preset,
                          pretrained, force, live_warnings, split, kind, cache)
    finally:
        ctx.close()


def _run_bench(ctx, start, tokenizers, data, out, metrics, quick, progress, examples, preset, pretrained, force,
               live_warnings, split, kind, cache_root) -> dict:
    requested = None if metrics is None else set(metrics)
    axes = {"rate", "streaming", "modelability"}
    if requested is not None:
        known = {m.name for m in available_metrics("distortion", has_reference=True, has_transcript=True, has_phones=True,
                                                   speech=True, installed_only=False, opt_in=True)}
        unknown = sorted(requested - known - axes)
        if unknown:
            raise ConfigError(f"unknown metric(s) {', '.join(map(repr, unknown))}: choose from "
                              f"{', '.join(sorted(known | axes))}")
    if out is not None and Path(out).exists() and not Path(out).is_dir():
        raise OutputError(f"bench --out {out} is a file; give a folder for results.json, report.html and examples")
    if requested is not None and requested & axes:
        axes = requested & axes
    distortion_requested = None if requested is None else (requested - {"rate", "streaming", "modelability"}) or None
    corpora = load_bench_data(data, split, kind)
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
            info["scored"] = first_seconds(info["scored"], preset.test_seconds)
        if split == "test":
            info["splits"]["test"] = info["scored"]
        else:  # no probes: the run reads only the files it scores
            info["splits"] = by_split(info["scored"])
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
    data_key = data_fingerprint(corpora)
    learned_weights = metric_weights(requested)  # the networks behind learned metrics (whisper_wer, ...)
    previous = {} if force or out_dir is None else previous_rows(out_dir / "results.json")
    reused: list[str] = []

    def run_info(done: bool) -> dict:
        return {"environment": environment(), "seconds": round(time.perf_counter() - start, 3),
                "preset": {**asdict(preset), "budget": asdict(budget)}, "quick": preset.name == "quick",
                "metrics": sorted(requested) if requested else None, "split": split, "tokenizers": [str(t) for t in tokenizers],
                "reused": list(reused), "complete": done, "world_size": ctx.world_size,
                "metric_weights": learned_weights or None}

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
            tok = load_tokenizer(name, pretrained=pretrained, device=str(ctx.device))
            family = _family(name.partition("@")[0])
            weights = getattr(tok, "weights", None)
            if getattr(tok, "names_itself", False):  # an adapter: "encodec-24k (random weights)", never the bare name
                name = tok.name
            key = reuse_key(tok.config_hash, {"tokenizer": weights, "metrics": learned_weights} if learned_weights
                            else weights, data_key, preset, requested, split)
            if previous.get(name, {}).get("reuse_key") == key:  # same config, weights, data, preset: nothing to redo
                results["tokenizers"][name] = previous[name]
                reused.append(name)
                if progress:
                    tqdm.write(f"{name}: reused from {out_dir / 'results.json'} (same config, weights, data and preset)")
                continue
            row: dict = {"family": family, "kind": tok.kind, "config": to_dict(tok.config), "config_hash": tok.config_hash,
                         "sample_rate": tok.sample_rate, "frame_rate": tok.frame_rate, "hop_length": tok.hop_length,
                         "weights": weights, "reuse_key": key}
            cache = LatentCache.for_tokenizer(tok, cache_root)
            tok_corpora, row["corpora_left_out"] = _corpora_for(tok, name, corpora)
            distortion, test_latents, test_audio, test_phones, row["examples"], timing = score_distortion(
                tok, name, tok_corpora, distortion_requested, preset.excluded, progress, out_dir, examples, ctx, cache)
            row["distortion"] = distortion
            rate = rate_metrics(test_latents)
            rate["tokens_per_second_spread"] = token_spread(test_latents)
            rate["by_content"] = rate_by_content(test_latents, test_audio, test_phones)
            rate["bits_per_second"] = rate["nominal_bits_per_second"] if test_latents[0].is_discrete else None
            rate.update(encode_rtf=timing["encode"] / timing["audio"], decode_rtf=timing["decode"] / timing["audio"])
            row["rate"] = rate if "rate" in axes else {"bits_per_second": rate["bits_per_second"], "skipped": "not requested"}
            train_entries, train_groups, no_probe = _probe_plan(family, tok_corpora, axes, split)
            t0 = time.perf_counter()
            train_latents = [] if no_probe else encode_entries(tok, train_entries, cache, ctx, progress,
                                                               f"{name} / train split")[0]
            timing["train_encode"] = time.perf_counter() - t0
            timing["train_audio"] = sum(e.duration for e in train_entries)
            if ctx.is_main:  # streaming and modelability: one process (every rank holds all the latents)
                t0 = time.perf_counter()
                if "streaming" in axes:
                    if progress:
                        tqdm.write(f"{name}: streaming probe")
                    row["streaming"] = measure_streaming(tok, **preset.streaming)
                else:
                    row["streaming"] = {"causal": None, "algorithmic_latency_ms": None, "skipped": "not requested"}
                t1 = time.perf_counter()
                row["modelability"] = ({"probe_bits_per_second": None, "skipped": no_probe} if no_probe else
                                       _modelability(tok, name, train_entries, train_groups, train_latents, budget,
                                                     test_latents, test_audio, test_phones, progress))
                timing.update(streaming=t1 - t0, probes=time.perf_counter() - t1)
                row["cache"] = cache.summary()
                row["seconds"] = {**{k: round(v, 3) for k, v in timing.items()}, "total": round(time.perf_counter() - t_start, 3)}
            row = ctx.broadcast(row)
            results["tokenizers"][name] = row
            if out_dir is not None and ctx.is_main:  # a stopped run keeps every tokenizer it finished
                results["run"] = {**run_info(done=False), "warnings": summarise_warnings(collected)}
                write_results(results, out_dir)
    results["run"] = {**run_info(done=True), "warnings": summarise_warnings(collected)}
    if out_dir is not None and ctx.is_main:
        write_results(results, out_dir)
    return results


def _corpora_for(tok, name: str, corpora: dict) -> tuple[dict, dict]:
    """The corpora ``tok`` can encode and ``{corpus: why not}`` for the others: a tokenizer that
    segments by phones (``needs_phones``) reads only corpora whose every file has an alignment."""
    if not getattr(tok, "needs_phones", False):
        return corpora, {}
    usable = {c: info for c, info in corpora.items()  # the splits hold the scored files too
              if all(e.phones for entries in info["splits"].values() for e in entries)}
    left_out = {c: "no phone alignment on every file" for c in corpora if c not in usable}
    if not usable:
        raise ConfigError(f"{name} segments by phone alignments, and no corpus of this bench has them on every file "
                          f"({', '.join(corpora)}); bench it on speech_aligned (--data with a manifest whose rows carry `phones`)")
    return usable, left_out


def _probe_plan(family: str, corpora: dict, axes: set, split: str) -> tuple[list, list, str | None]:
    """``(train entries, their corpus, None)`` for the modelability probes, or ``([], [], why not)``."""
    if "modelability" not in axes:
        return [], [], "not requested"
    if family == "classical":
        return [], [], "classical codec: its bitstream bytes are not a latent for a second-stage model"
    if split != "test":
        return [], [], (f"--split {split} scores the probes' train files too: no held-out split to score the probes on "
                        "(the default --split test measures modelability)")
    train_entries = [e for info in corpora.values() for e in info["splits"].get("train", [])]
    if not train_entries:
        return [], [], "the data has no train split to train the probes on"
    return train_entries, [corpus for corpus, info in corpora.items() for _ in info["splits"].get("train", [])], None


def _modelability(tok, name, train_entries, train_groups, train_latents, budget, test_latents, test_audio, test_phones,
                  progress) -> dict:
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
