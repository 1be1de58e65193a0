"""Where a variable-rate tokenizer puts its tokens: segment boundaries over a spectrogram.

    PYTHONPATH=src python scripts/plot_segments.py TOKENIZER [--file ID] [--out docs/varrate-segments.png]

TOKENIZER: a checkpoint, run folder or built-in name whose latent carries per-frame durations
(``segment`` bottleneck); ``--file``: a ``speech_real`` test file id (default: the longest test
file). The plot has three rows on one time axis: the log-mel spectrogram with a line at every
segment start, each segment's duration in frames (bars), and the energy-rule speech/silence mask
of the bench (``bench/rate.py speech_frames``). The title gives segments/s and nominal bits/s of
the file, durations included.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

from audiolatent.bench.rate import CONTENT_WINDOW_SECONDS, _frame_times, speech_frames  # noqa: E402
from audiolatent.core.atomic import atomic_path  # noqa: E402
from audiolatent.core.audio import load_audio  # noqa: E402
from audiolatent.core.registry import load_tokenizer  # noqa: E402
from audiolatent.data.corpus import builtin_corpus  # noqa: E402
from audiolatent.data.manifest import read_manifest  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def log_mel(audio: torch.Tensor, rate: int) -> torch.Tensor:
    """``[80, T]`` log-mel (25 ms Hann window, 10 ms hop) for the picture only."""
    import numpy as np

    n_fft, hop = int(0.025 * rate), int(0.010 * rate)
    spec = torch.stft(audio, 512, hop, n_fft, torch.hann_window(n_fft), return_complex=True).abs().pow(2)
    freqs = np.linspace(0, rate / 2, spec.shape[0])
    mel = 2595 * np.log10(1 + freqs / 700)
    edges = np.linspace(0, mel[-1], 82)
    bank = np.maximum(0, np.minimum((mel[None] - edges[:-2, None]) / (edges[1:-1, None] - edges[:-2, None]),
                                    (edges[2:, None] - mel[None]) / (edges[2:, None] - edges[1:-1, None])))
    return torch.log10(torch.from_numpy(bank).float() @ spec + 1e-8)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("tokenizer")
    parser.add_argument("--file", default=None, help="a speech_real test file id (default: the longest)")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "varrate-segments.png")
    args = parser.parse_args()
    tests = [e for e in read_manifest(builtin_corpus("speech_real")) if e.split == "test"]
    entry = max(tests, key=lambda e: e.duration) if args.file is None else next((e for e in tests if e.id == args.file), None)
    if entry is None:
        raise SystemExit(f"--file {args.file}: not a speech_real test file id ({', '.join(e.id for e in tests[:5])}, ...)")
    tok = load_tokenizer(args.tokenizer).eval()
    audio, _ = load_audio(entry.path, sample_rate=tok.sample_rate, mono=True)
    with torch.no_grad():
        latent = tok.encode(audio.reshape(1, 1, -1))
    durations_stream = latent.streams[-1]
    if durations_stream.durations is None:
        raise SystemExit(f"{args.tokenizer}: a fixed-rate latent (no durations); this plot is for variable-rate tokenizers")
    n = int(durations_stream.lengths[0]) if durations_stream.lengths is not None else durations_stream.num_frames
    starts, durations = _frame_times(durations_stream, 0, n)
    seconds = audio.shape[-1] / tok.sample_rate
    bits = sum(sum(math.log2(v) for v in s.codebook_sizes) for s in latent.streams if s.is_discrete) * n
    speech = speech_frames(audio.reshape(1, -1), tok.sample_rate)
    in_speech = speech[((starts + durations / 2) / CONTENT_WINDOW_SECONDS).long().clamp(0, speech.numel() - 1)]

    fig, axes = plt.subplots(3, 1, figsize=(10, 5.2), dpi=110, sharex=True, gridspec_kw={"height_ratios": [4, 1.6, 0.5]})
    mel = log_mel(audio.reshape(-1), tok.sample_rate)
    axes[0].imshow(mel.numpy(), origin="lower", aspect="auto", cmap="magma", extent=(0, seconds, 0, mel.shape[0]))
    for t in starts.tolist():
        axes[0].axvline(t, color="#7fd", lw=0.6, alpha=0.8)
    axes[0].set_ylabel("log-mel bin")
    frame = 1.0 / tok.frame_rate
    axes[1].bar(starts.numpy(), (durations / frame).numpy(), width=durations.numpy() * 0.9, align="edge",
                color=["#357" if s else "#c52" for s in in_speech.tolist()])
    axes[1].set_ylabel("frames per\nsegment")
    from matplotlib.patches import Patch

    axes[1].legend(handles=[Patch(color="#357", label="segment centred in speech"), Patch(color="#c52", label="in silence")],
                   fontsize=7, loc="upper right", ncol=2)
    axes[2].imshow(speech[None].float().numpy(), aspect="auto", cmap="Greys", extent=(0, speech.numel() * CONTENT_WINDOW_SECONDS, 0, 1))
    axes[2].set_yticks([])
    axes[2].set_ylabel("speech\n(black)", rotation=0, ha="right", va="center", fontsize=8)
    axes[2].set_xlabel("time (s)")
    silent = int((~in_speech).sum())
    axes[0].set_title(f"{Path(args.tokenizer).name} on speech_real test '{entry.id}': {n} segments in {seconds:.2f} s = "
                      f"{n / seconds:.1f} segments/s, {bits / seconds:.0f} bits/s nominal (durations included); "
                      f"{silent} segments in silence", fontsize=8)
    fig.tight_layout()
    with atomic_path(args.out) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    print(f"wrote {args.out}: {n / seconds:.1f} segments/s, {bits / seconds:.0f} bits/s, {silent} of {n} segments in silence")


if __name__ == "__main__":
    main()
