"""Is a vocoder losing PESQ in its magnitudes or in its phases? Swap each with the reference's.

    PYTHONPATH=src python benchmarks/vocoder_phase_oracle.py -t CHECKPOINT_OR_NAME [-t ...] [--files N]

For each ``speech_real`` test file of at least 1 s (the vocoder bar's set) the tokenizer's offline
round trip ``y`` is compared with the reference ``x`` in one STFT (Hann, n_fft 640, hop 160: the
mel vocoders' synthesis grid) and resynthesised three ways:

* ``decoded``: ``y`` itself;
* ``decoded magnitude, true phase``: ``istft(|Y| exp(i arg X))``: what a perfect phase would give;
* ``true magnitude, decoded phase``: ``istft(|X| exp(i arg Y))``: what a perfect magnitude would give.

PESQ-WB (the bench's ``pesq_wb``) of each against ``x``, averaged over the files. The round trip is
time-aligned by construction (the mel vocoders trim their analysis delay) once a declared decoder
``delay`` is undone (the ``pghi`` vocoders lag by one hop); a lag would show up as a low
"decoded magnitude, true phase" score. The identity (``-t identity``, ``y = x``) is the
known answer: 4.64 on all three.
"""

from __future__ import annotations

import argparse

import torch

from audiolatent.bench.distortion import pesq_wb
from audiolatent.core.audio import load_audio
from audiolatent.core.registry import load_tokenizer
from audiolatent.data.corpus import builtin_corpus
from audiolatent.data.manifest import read_manifest

N_FFT, HOP = 640, 160
ROWS = ("decoded", "decoded magnitude, true phase", "true magnitude, decoded phase")


def swaps(x: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
    """The three signals of the module docstring from reference ``x`` and decoded ``y`` (``[N]``, same length)."""
    window = torch.hann_window(N_FFT, dtype=x.dtype)
    X = torch.stft(x, N_FFT, HOP, window=window, return_complex=True)
    Y = torch.stft(y, N_FFT, HOP, window=window, return_complex=True)

    def inverse(spec: torch.Tensor) -> torch.Tensor:
        return torch.istft(spec, N_FFT, HOP, window=window, length=x.numel())

    return {
        ROWS[0]: y,
        ROWS[1]: inverse(torch.polar(Y.abs(), X.angle())),
        ROWS[2]: inverse(torch.polar(X.abs(), Y.angle())),
    }


def measure(name: str, files: int | None) -> dict[str, float]:
    source = builtin_corpus("speech_real")
    entries = [e for e in read_manifest(source) if e.split == "test" and e.duration >= 1.0][:files]
    if not entries:
        raise SystemExit(f"no speech_real test file of at least 1 s in {source}")
    tok = None if name == "identity" else load_tokenizer(name).eval()
    scores: dict[str, list[float]] = {row: [] for row in ROWS}
    for entry in entries:
        x = load_audio(entry.path, sample_rate=16000, mono=True)[0].reshape(-1)  # [N]
        with torch.no_grad():
            y = x.clone() if tok is None else tok.decode(tok.encode(x[None, None]))[0, 0, : x.numel()]
        delay = 0 if tok is None else tok.delay  # a declared decoder delay: undo it (the last samples are lost)
        if delay:
            y = torch.cat([y[delay:], y.new_zeros(delay)])
        if y.shape != x.shape:
            raise SystemExit(f"{name} decoded {y.numel()} samples of {entry.path}'s {x.numel()}: not a round trip")
        for row, signal in swaps(x, y).items():
            scores[row].append(float(pesq_wb(x[None], signal[None], 16000)[0]))
    return {row: sum(v) / len(v) for row, v in scores.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-t", "--tokenizer", action="append", required=True,
                        help="checkpoint folder, tokenizer name, or 'identity' (the known answer)")
    parser.add_argument("--files", type=int, default=None, help="score only the first N files")
    args = parser.parse_args()
    torch.set_num_threads(1)
    print("| tokenizer | " + " | ".join(ROWS) + " |")
    print("|---" * (len(ROWS) + 1) + "|")
    for name in args.tokenizer:
        result = measure(name, args.files)
        print(f"| {name} | " + " | ".join(f"{result[row]:.2f}" for row in ROWS) + " |")


if __name__ == "__main__":
    main()
