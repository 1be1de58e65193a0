"""STOI per one-third-octave band: where a codec loses intelligibility (README, "The default codec").

    PYTHONPATH=src python benchmarks/stoi_bands.py [-t NAME_OR_PATH ...] [--split test|train] [--corpus speech_real]

For each tokenizer, every file of the split (>= 1 s) is encoded, decoded and aligned exactly as
the bench does it (:func:`audiolatent.bench.align.align`, 5 ms envelope guide), then STOI's
intermediate measure is computed with pystoi's own building blocks (10 kHz, 25.6 ms frames,
15 one-third-octave bands from 150 Hz, 384 ms segments, -15 dB clipping) and averaged per band
instead of over all bands. The mean over bands is the file's STOI (it matches ``pystoi.stoi`` to
1e-6). Comparing the ``train`` and ``test`` splits shows memorisation: a codec that scores much
better on its training files than a fixed codec like Codec2 does has learnt those files.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from pystoi import utils
from pystoi.stoi import BETA, DYN_RANGE, FS, N, N_FRAME, NFFT, OBM

from audiolatent.bench.align import align
from audiolatent.bench.runner import ALIGN_ENVELOPE_SECONDS
from audiolatent.core.registry import load_tokenizer
from audiolatent.data import AudioDataset
from audiolatent.data.corpus import builtin_corpus
from audiolatent.data.manifest import read_manifest

CENTRES_HZ = [150 * 2 ** (k / 3) for k in range(15)]


def band_correlations(reference: np.ndarray, estimate: np.ndarray, rate: int) -> np.ndarray:
    """STOI's intermediate intelligibility, averaged over segments, per band: ``[15]``."""
    x, y = utils.resample_oct(reference, FS, rate), utils.resample_oct(estimate, FS, rate)
    x, y = utils.remove_silent_frames(x, y, DYN_RANGE, N_FRAME, N_FRAME // 2)
    x_bands = np.sqrt(OBM @ np.abs(utils.stft(x, N_FRAME, NFFT, overlap=2).T) ** 2)
    y_bands = np.sqrt(OBM @ np.abs(utils.stft(y, N_FRAME, NFFT, overlap=2).T) ** 2)
    xs = np.array([x_bands[:, m - N : m] for m in range(N, x_bands.shape[1] + 1)])
    ys = np.array([y_bands[:, m - N : m] for m in range(N, x_bands.shape[1] + 1)])
    ys = ys * np.linalg.norm(xs, axis=2, keepdims=True) / (np.linalg.norm(ys, axis=2, keepdims=True) + utils.EPS)
    ys = np.minimum(ys, xs * (1 + 10 ** (-BETA / 20)))
    ys, xs = ys - ys.mean(2, keepdims=True), xs - xs.mean(2, keepdims=True)
    ys /= np.linalg.norm(ys, axis=2, keepdims=True) + utils.EPS
    xs /= np.linalg.norm(xs, axis=2, keepdims=True) + utils.EPS
    return (xs * ys).sum(2).mean(0)


@torch.inference_mode()
def measure(name: str, corpus: str, split: str) -> np.ndarray:
    """``[files, 15]`` band correlations of tokenizer ``name`` on ``corpus``/``split`` (files >= 1 s)."""
    entries = [e for e in read_manifest(builtin_corpus(corpus)) if e.split == split and e.duration >= 1.0]
    tok = load_tokenizer(name)
    ds = AudioDataset(entries, sample_rate=tok.sample_rate, mono=True)
    rows = []
    for i in range(len(ds)):
        audio = ds[i]["audio"][None]
        recon = tok.decode(tok.encode(audio)).float().cpu()
        ref, est, _ = align(audio, recon, max(4 * tok.hop_length, tok.sample_rate // 20),
                            envelope_window=round(ALIGN_ENVELOPE_SECONDS * tok.sample_rate))
        rows.append(band_correlations(ref[0, 0].double().numpy(), est[0, 0].double().numpy(), tok.sample_rate))
    return np.array(rows)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-t", "--tokenizer", action="append", help="tokenizers (default: codec-16k-default, codec2-3200)")
    parser.add_argument("--corpus", default="speech_real")
    parser.add_argument("--split", default="test")
    args = parser.parse_args()
    print(f"| tokenizer | files | STOI | " + " | ".join(f"{c:.0f}" for c in CENTRES_HZ) + " |")
    print("|---|---|---|" + "---|" * len(CENTRES_HZ))
    for name in args.tokenizer or ["codec-16k-default", "codec2-3200"]:
        bands = measure(name, args.corpus, args.split)
        print(f"| {name} | {len(bands)} | {bands.mean():.3f} | " + " | ".join(f"{v:.2f}" for v in bands.mean(0)) + " |")
