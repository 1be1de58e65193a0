"""Peak memory of ``audiolatent encode`` / ``decode`` as files grow (issue 15, case 18).

    PYTHONPATH=src python benchmarks/long_audio_memory.py [--minutes 1 10 60] [-t codec-16k-default]

Writes a synthetic 16 kHz speech-like signal (gliding harmonics with noise) of each length,
then runs ``audiolatent encode`` and ``audiolatent decode`` on it, each in a fresh process
(one torch thread), and prints each one's peak resident memory (``ru_maxrss``) and wall time.
The CLI chunks signals longer than a minute (``tokenizers/long.py``, ``encode_any``), so the
peak should grow only by the audio and latent themselves (64 kB per second of 16 kHz float32
audio), not by the model's activations.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

CHILD = """
import resource, sys, torch
torch.set_num_threads(1)
from audiolatent.cli.main import main
code = main(sys.argv[1:])
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)
sys.exit(code)
"""


def write_signal(path: Path, minutes: float, rate: int = 16000) -> None:
    rng = np.random.default_rng(0)
    with sf.SoundFile(path, "w", rate, 1, subtype="PCM_16") as f:
        for start in range(0, int(minutes * 60), 10):  # 10 s blocks: the writer itself stays small
            t = np.arange(start * rate, (start + 10) * rate) / rate
            f0 = 140 + 40 * np.sin(2 * np.pi * 0.3 * t)
            phase = 2 * np.pi * np.cumsum(f0) / rate
            x = sum(0.2 / h * np.sin(h * phase) for h in (1, 2, 3, 4)) * (0.5 + 0.5 * np.sin(2 * np.pi * 2 * t) ** 2)
            f.write((x + 0.003 * rng.standard_normal(t.size)).astype(np.float32))


def peak(args: list[str]) -> tuple[float, float]:
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", CHILD, *args], capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed: {proc.stderr[-1000:]}")
    return int(proc.stderr.strip().splitlines()[-1]) / 1024, time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, nargs="+", default=[1, 10, 60])
    parser.add_argument("-t", "--tokenizer", default="codec-16k-default")
    args = parser.parse_args()
    print(f"| minutes | encode peak MB | encode s | decode peak MB | decode s |  ({args.tokenizer})")
    print("|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for minutes in args.minutes:
            audio, latent, out = Path(tmp) / "in.wav", Path(tmp) / "x.latent", Path(tmp) / "out.wav"
            write_signal(audio, minutes)
            enc_mb, enc_s = peak(["encode", "-t", args.tokenizer, str(audio), str(latent)])
            dec_mb, dec_s = peak(["decode", str(latent), str(out)])
            print(f"| {minutes:g} | {enc_mb:.0f} | {enc_s:.1f} | {dec_mb:.0f} | {dec_s:.1f} |", flush=True)
            for p in (audio, latent, out):
                p.unlink()


if __name__ == "__main__":
    main()
