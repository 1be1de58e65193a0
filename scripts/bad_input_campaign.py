"""A bad-input campaign against the command line (issue 15): count clear errors, tracebacks and
silently wrong results.

    PYTHONPATH=src python scripts/bad_input_campaign.py [--verbose]

Each case builds its inputs in a fresh temporary folder, runs ``audiolatent ARGS`` in this
process (``audiolatent.cli.main.main``, stderr captured) and classifies the outcome:

* **clear**: an error was expected and the command exited non-zero with one line on stderr;
* **valid**: valid (if unusual) input, exit 0 and the expected output;
* **traceback**: an exception escaped, or stderr holds a Python traceback;
* **silently wrong**: exit 0 where an error was expected, an input file changed, or a
  half-written output was left behind.

Prints one line per case that is not clear/valid (``--verbose``: every case) and the counts.
Exit status 1 when any case is a traceback or silently wrong.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import json
import sys
import tempfile
import traceback
import warnings
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "src"))

from audiolatent.cli.main import main as cli_main  # noqa: E402

RATE = 16000


def tone(seconds: float = 0.5, rate: int = RATE, channels: int = 1) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    x = (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
    return np.stack([x] * channels, axis=1) if channels > 1 else x


def wav(path: Path, data=None, rate: int = RATE, subtype: str = "FLOAT") -> Path:
    sf.write(path, tone() if data is None else data, rate, subtype=subtype)
    return path


def relabel(src: Path, dst: Path, edit) -> Path:
    """Copy the latent file ``src`` to ``dst`` with its JSON header and tensors changed by ``edit(header, tensors)``."""
    with safe_open(str(src), framework="pt") as f:
        header = json.loads(f.metadata()["audiolatent"])
    tensors = load_file(str(src))
    edit(header, tensors)
    save_file(tensors, str(dst), metadata={"audiolatent": json.dumps(header)})
    return dst


def _set(path: list, value):
    def edit(header, tensors):
        node = header
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value
    return edit


def cases(d: Path):
    """``([(name, expect, args)], inputs_to_guard)``; ``expect`` is "error" or "ok"."""
    w = wav(d / "in.wav")
    latent = d / "good.latent"
    cli_main(["encode", "-t", "codec-16k-default", str(w), str(latent)])
    dlat = d / "dmel.latent"
    cli_main(["encode", "-t", "dmel-16k", str(w), str(dlat)])
    ckpt = d / "ckpt"
    cli_main(["export", "codec-16k-default", str(ckpt)])
    mine = d / "mydir"
    mine.mkdir()
    (mine / "keep.txt").write_text("precious")
    run = d / "run"
    (run / "checkpoints" / "step_000040").mkdir(parents=True)
    (run / "latest").write_text("step_000040\n")
    badrun = d / "badrun"
    badrun.mkdir()
    (badrun / "latest").write_bytes(b"\xff\xfe\x00")
    garbage_ckpt = d / "garbage"
    garbage_ckpt.mkdir()
    (garbage_ckpt / "config.yaml").write_bytes(bytes(range(256)))
    (d / "afile").write_text("x")
    (d / "adir.wav").mkdir()
    blob = w.read_bytes()
    (d / "half.wav").write_bytes(blob[: len(blob) // 2])
    sf.write(d / "in.flac", tone(), RATE)
    (d / "half.flac").write_bytes((d / "in.flac").read_bytes()[:200])
    (d / "random.wav").write_bytes(np.random.default_rng(0).bytes(3000))
    (d / "text.wav").write_text("not audio")
    (d / "empty.wav").write_bytes(b"")
    wav(d / "huge.wav", tone() * 1e30)
    wav(d / "loud.wav", tone() * 50)
    nan = tone().copy()
    nan[10] = np.nan
    wav(d / "nan.wav", nan)
    wav(d / "stereo.wav", tone(channels=2))
    wav(d / "zero.wav", np.zeros(0, dtype=np.float32))
    wav(d / "44k.wav", tone(rate=44100), rate=44100)
    wav(d / "8bit.wav", tone(), subtype="PCM_U8")
    wav(d / "ünïcødé ✓.wav")
    (d / "link.latent").symlink_to(w)
    (d / "random.latent").write_bytes(np.random.default_rng(1).bytes(500))
    (d / "trunc.latent").write_bytes(latent.read_bytes()[:300])
    relabel(latent, d / "forged.latent", lambda h, t: (h["streams"][0].__setitem__("codebook_sizes", [1024] * 4),
                                                         t["stream0.values"].__setitem__((0, 1, 3), 900)))
    relabel(latent, d / "neg.latent", lambda h, t: t.__setitem__("num_samples", torch.tensor([-5])))
    relabel(latent, d / "zero.latent", lambda h, t: t.__setitem__("stream0.values", t["stream0.values"][..., :0]) or
            t.__setitem__("stream0.lengths", torch.tensor([0])))
    for i, (path, value) in enumerate([(["format_version"], "1"), (["sample_rate"], None), (["streams", 0, "frame_rate"], "fast"),
                                       (["streams"], "x"), (["streams", 0, "codebook_sizes"], [1]), (["tokenizer"], 7),
                                       (["streams", 0, "frame_rate"], 25.0), (["sample_rate"], 8000)]):
        relabel(latent, d / f"hdr{i}.latent", _set(path, value))
    guarded = [w, latent, dlat, mine / "keep.txt", d / "afile"]
    out = d / "out"
    return [
        ("encode: missing input", "error", ["encode", "-t", "mel-16k", d / "nope.wav", out / "a.latent"]),
        ("encode: a directory as input", "error", ["encode", "-t", "mel-16k", mine, out / "a.latent"]),
        ("encode: empty file", "error", ["encode", "-t", "mel-16k", d / "empty.wav", out / "a.latent"]),
        ("encode: random bytes", "error", ["encode", "-t", "mel-16k", d / "random.wav", out / "a.latent"]),
        ("encode: a text file", "error", ["encode", "-t", "mel-16k", d / "text.wav", out / "a.latent"]),
        ("encode: truncated WAV (warned)", "ok", ["encode", "-t", "mel-16k", d / "half.wav", out / "a.latent"]),
        ("encode: truncated FLAC", "error", ["encode", "-t", "mel-16k", d / "half.flac", out / "a.latent"]),
        ("encode: samples of 1e30", "error", ["encode", "-t", "codec-16k-default", d / "huge.wav", out / "a.latent"]),
        ("encode: clipped x50 (warned)", "ok", ["encode", "-t", "codec-16k-default", d / "loud.wav", out / "a.latent"]),
        ("encode: a NaN sample", "error", ["encode", "-t", "mel-16k", d / "nan.wav", out / "a.latent"]),
        ("encode: stereo into mono", "error", ["encode", "-t", "mel-16k", d / "stereo.wav", out / "a.latent"]),
        ("encode: stereo --downmix", "ok", ["encode", "-t", "mel-16k", "--downmix", d / "stereo.wav", out / "a.latent"]),
        ("encode: 0 samples", "error", ["encode", "-t", "mel-16k", d / "zero.wav", out / "a.latent"]),
        ("encode: 44.1 kHz (resampled)", "ok", ["encode", "-t", "dmel-16k", d / "44k.wav", out / "a.latent"]),
        ("encode: 8-bit WAV", "ok", ["encode", "-t", "dmel-16k", d / "8bit.wav", out / "a.latent"]),
        ("encode: unicode path", "ok", ["encode", "-t", "dmel-16k", d / "ünïcødé ✓.wav", out / "ü ✓.latent"]),
        ("encode: output = input", "error", ["encode", "-t", "mel-16k", w, w]),
        ("encode: output is a link to the input", "error", ["encode", "-t", "mel-16k", w, d / "link.latent"]),
        ("encode: output is a directory", "error", ["encode", "-t", "mel-16k", w, d / "adir.wav"]),
        ("encode: unknown tokenizer", "error", ["encode", "-t", "nope", w, out / "a.latent"]),
        ("encode: --device banana", "error", ["encode", "-t", "mel-16k", "--device", "banana", w, out / "a.latent"]),
        ("encode: --device cuda on CPU torch", "error" if not torch.cuda.is_available() else "ok",
         ["encode", "-t", "mel-16k", "--device", "cuda", w, out / "a.latent"]),
        ("decode: missing latent", "error", ["decode", d / "nope.latent", out / "a.wav"]),
        ("decode: random bytes", "error", ["decode", d / "random.latent", out / "a.wav"]),
        ("decode: truncated latent", "error", ["decode", d / "trunc.latent", out / "a.wav"]),
        ("decode: forged codebook sizes", "error", ["decode", d / "forged.latent", out / "a.wav"]),
        ("decode: negative num_samples", "error", ["decode", d / "neg.latent", out / "a.wav"]),
        ("decode: 0 frames", "error", ["decode", d / "zero.latent", out / "a.wav"]),
        *[(f"decode: hand-edited header {i}", "error", ["decode", d / f"hdr{i}.latent", out / "a.wav"]) for i in range(8)],
        ("decode: another tokenizer forced", "error", ["decode", "-t", "mel-16k", latent, out / "a.wav"]),
        ("decode: dmel latent into the codec", "error", ["decode", "-t", "codec-16k-default", dlat, out / "a.wav"]),
        ("decode: output = input", "error", ["decode", latent, latent]),
        ("decode: output is a directory", "error", ["decode", latent, d / "adir.wav"]),
        ("decode: unknown output extension", "error", ["decode", latent, out / "a.xyz"]),
        ("decode: valid", "ok", ["decode", latent, out / "a.flac"]),
        ("export: into a user's folder", "error", ["export", ckpt, mine]),
        ("export: onto a file", "error", ["export", ckpt, d / "afile"]),
        ("export: onto a checkpoint", "ok", ["export", ckpt, d / "ckpt2"]),
        ("export: not a checkpoint", "error", ["export", mine, out / "e"]),
        ("export: bad --weights", "error", ["export", ckpt, out / "e", "--weights", "int4"]),
        ("info: nonexistent", "error", ["info", d / "nothing"]),
        ("info: non-UTF-8 latest pointer", "error", ["info", badrun]),
        ("info: binary config.yaml", "error", ["info", garbage_ckpt]),
        ("info: a run folder", "error", ["info", run]),  # its latest names no real checkpoint
        ("bench: unknown metric", "error", ["bench", "-t", "mel-16k", "--metrics", "nosuch", "--out", out / "b", "--no-progress"]),
        ("bench: --out is a file", "error", ["bench", "-t", "mel-16k", "--out", d / "afile", "--no-progress"]),
        ("bench: missing --data", "error", ["bench", "-t", "mel-16k", "--data", d / "nope", "--out", out / "b2", "--no-progress"]),
        ("train: checkpoint_every=-3", "error", ["train", "default-16k", "--data", w, "--out", out / "t", "--set", "checkpoint_every=-3"]),
        ("train: optim.lr=.nan", "error", ["train", "default-16k", "--data", w, "--out", out / "t", "--set", "optim.lr=.nan"]),
        ("train: --out is a file", "error", ["train", "default-16k", "--data", w, "--out", d / "afile"]),
        ("train: --out holds a run", "error", ["train", "default-16k", "--data", w, "--out", run]),
        ("train: --resume with nothing to resume", "error", ["train", "default-16k", "--data", w, "--out", out / "t2", "--resume"]),
        ("train: --device banana", "error", ["train", "default-16k", "--data", w, "--out", out / "t3", "--device", "banana"]),
        ("train: unknown config", "error", ["train", "nope", "--data", w, "--out", out / "t4"]),
        ("train: unknown key", "error", ["train", "default-16k", "--data", w, "--out", out / "t5", "--set", "optim.nope=1"]),
        ("lm train: eval_every=-1", "error", ["lm", "train", "-t", "dmel-16k", "--data", w, "--model", "token-small", "--out",
                                             out / "l", "--set", "eval_every=-1"]),
        ("lm train: --out holds a run", "error", ["lm", "train", "-t", "dmel-16k", "--data", w, "--model", "token-small",
                                                 "--out", run]),
        ("generate: missing LM", "error", ["generate", "--lm", d / "nolm", "--prompt", w, "--seconds", "1", out / "g.wav"]),
    ], guarded


def run_case(args) -> tuple[int | None, str, str | None]:
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("always")
        try:
            code = cli_main([str(a) for a in args])
        except SystemExit as exc:  # argparse usage errors
            code = exc.code if isinstance(exc.code, int) else 2
        except BaseException:  # noqa: BLE001 - the point is to catch what escapes
            return None, err.getvalue(), traceback.format_exc()
    return code, err.getvalue(), None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--verbose", action="store_true", help="print every case")
    opts = parser.parse_args()
    torch.set_num_threads(1)
    counts = {"clear": 0, "valid": 0, "traceback": 0, "silently wrong": 0}
    with tempfile.TemporaryDirectory() as tmp:
        with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()):
            all_cases, guarded = cases(Path(tmp))

        digests = {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in guarded}
        for name, expect, args in all_cases:
            code, err, tb = run_case(args)
            changed = [p.name for p in guarded if hashlib.sha256(p.read_bytes()).hexdigest() != digests[p]]
            temps = [p.name for p in Path(tmp).rglob("*") if ".tmp." in p.name]
            lines = [line for line in err.splitlines() if line.startswith("audiolatent") and "error" in line]
            if tb is not None or "Traceback" in err:
                verdict = "traceback"
            elif changed or temps or (expect == "error" and code == 0):
                verdict = "silently wrong"
            elif expect == "error":
                verdict = "clear" if code != 0 and (len(lines) == 1 or code == 2) else "traceback"
            else:
                verdict = "valid" if code == 0 else "silently wrong"
            counts[verdict] += 1
            if opts.verbose or verdict in ("traceback", "silently wrong"):
                detail = (tb or err).strip().splitlines()[-1:] if (tb or err).strip() else [f"exit {code}"]
                extra = f" changed {changed}" if changed else f" temp {temps}" if temps else ""
                print(f"{verdict:>14}  {name}: {detail[0][:160]}{extra}")
    print(f"tried {sum(counts.values())}: " + ", ".join(f"{v} {k}" for k, v in counts.items()))
    return 1 if counts["traceback"] or counts["silently wrong"] else 0


if __name__ == "__main__":
    sys.exit(main())
