"""Round trip of a corpus through tokenizers: rate, distortion and speed in one table.

For every tokenizer and every file of the chosen split, the audio (resampled to the
tokenizer's rate, mono) is encoded and decoded offline; we report the nominal rate, the
real-time factors of encode and decode (compute seconds / audio seconds, lower is faster) and
the mean SI-SNR and multi-resolution mel distance of :mod:`audiolatent.bench.distortion`
between the input and its reconstruction. ``results.json`` carries each tokenizer's config,
the data used and the package versions, so any number can be reproduced with the command
stored beside it.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import torch
from tqdm import tqdm

from audiolatent.bench.distortion import mel_distance, si_snr
from audiolatent.core.atomic import atomic_path
from audiolatent.tokenizers.long import decode_any, encode_any
from audiolatent.core.audio import save_audio
from audiolatent.core.config import to_dict
from audiolatent.core.provenance import environment
from audiolatent.core.registry import load_tokenizer
from audiolatent.data import AudioDataset, builtin_corpus

__all__ = ["DEFAULT_TOKENIZERS", "run_roundtrip", "format_table"]

DEFAULT_TOKENIZERS = ("mel-16k", "dmel-16k")
DEFAULT_CORPORA = ("speech_real", "music")
EXAMPLES_PER_TOKENIZER = 2


def _datasets(data: str | None, split: str | None, max_files: int | None) -> dict[str, list]:
    split = None if split in (None, "all") else split
    sources = {name: builtin_corpus(name) for name in DEFAULT_CORPORA} if data is None else {Path(data).stem: data}
    return {name: AudioDataset(src, split=split, max_files=max_files).entries for name, src in sources.items()}


@torch.inference_mode()
def run_roundtrip(
    tokenizers,
    data: str | None = None,
    split: str | None = "test",
    max_files: int | None = None,
    out: str | None = None,
    progress: bool = True,
) -> dict:
    """Encode+decode every file of ``data`` (default: built-in speech and music) through each tokenizer."""
    corpora = _datasets(data, split, max_files)
    results: dict = {"tokenizers": {}, "data": {}, "run": environment()}
    for name, entries in corpora.items():
        results["data"][name] = {"files": len(entries), "seconds": round(sum(e.duration for e in entries), 3), "split": split}
    out_dir = Path(out) if out else None
    for tok_name in tokenizers:
        tok = load_tokenizer(tok_name)
        row = {"config": to_dict(tok.config), "config_hash": tok.config_hash, "kind": tok.kind,
               "frame_rate": tok.frame_rate, "causal": tok.causal, "lookahead_samples": tok.lookahead}
        mels, snrs, audio_s, enc_s, dec_s, n_files, examples = [], [], 0.0, 0.0, 0.0, 0, 0
        rate = None
        for corpus, entries in corpora.items():
            ds = AudioDataset(entries, sample_rate=tok.sample_rate, mono=tok.channels == 1)
            for i in tqdm(range(len(ds)), desc=f"{tok_name} / {corpus}", disable=not progress, leave=False):
                audio = ds[i]["audio"][None]
                t0 = time.perf_counter()
                latent = encode_any(tok, audio)
                t1 = time.perf_counter()
                recon = decode_any(tok, latent)
                t2 = time.perf_counter()
                enc_s, dec_s, audio_s, n_files = enc_s + t1 - t0, dec_s + t2 - t1, audio_s + audio.shape[-1] / tok.sample_rate, n_files + 1
                rate = {"bits_per_second": latent.bits_per_second, "values_per_second": latent.values_per_second,
                        "discrete": latent.is_discrete}
                mels.append(float(mel_distance(audio, recon, tok.sample_rate)[0]))
                snrs.append(float(si_snr(audio, recon)[0]))
                if out_dir is not None and examples < EXAMPLES_PER_TOKENIZER:
                    stem = Path(ds.entries[i].path).stem
                    save_audio(out_dir / "examples" / tok_name / f"{stem}.orig.wav", audio[0], tok.sample_rate)
                    save_audio(out_dir / "examples" / tok_name / f"{stem}.recon.wav", recon[0], tok.sample_rate)
                    examples += 1
        row.update(rate or {})
        row.update({
            "files": n_files, "audio_seconds": round(audio_s, 3),
            "encode_rtf": enc_s / audio_s, "decode_rtf": dec_s / audio_s,
            "mel_distance": sum(mels) / len(mels), "si_snr_db": sum(snrs) / len(snrs),
        })
        results["tokenizers"][tok_name] = row
    if out_dir is not None:
        with atomic_path(out_dir / "results.json") as tmp:
            tmp.write_text(json.dumps(results, indent=2))
    return results


def format_table(results: dict) -> str:
    """A fixed-width table of the round-trip results."""
    head = f"{'tokenizer':<16}{'frames/s':>9}{'kbps':>8}{'values/s':>10}{'files':>7}{'audio s':>9}" \
           f"{'enc RTF':>9}{'dec RTF':>9}{'mel dist':>10}{'SI-SNR dB':>11}"
    lines = [head, "-" * len(head)]
    for name, r in results["tokenizers"].items():
        kbps = f"{r['bits_per_second'] / 1000:.1f}" if r.get("discrete") else "-"
        lines.append(
            f"{name:<16}{r['frame_rate']:>9.1f}{kbps:>8}{r['values_per_second']:>10.0f}{r['files']:>7}"
            f"{r['audio_seconds']:>9.1f}{r['encode_rtf']:>9.4f}{r['decode_rtf']:>9.4f}{r['mel_distance']:>10.3f}"
            f"{r['si_snr_db']:>11.1f}"
        )
    data = ", ".join(f"{k}: {v['files']} files, {v['seconds']:.0f} s ({v['split'] or 'all'})" for k, v in results["data"].items())
    lines.append(f"data: {data}")
    return "\n".join(lines)
