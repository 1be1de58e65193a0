"""``audiolatent lm train`` and ``audiolatent generate``: train tiny LMs on a synthetic corpus, continue
a prompt with each (dmel-16k codes, codes of the shipped codec-16k-default, mel-16k frames decoded with
Griffin-Lim), and one-line errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from audiolatent.cli.main import main
from audiolatent.core.config import load_yaml, save_yaml
from tests.train.test_lm_trainer import TINY, write_corpus

HOP = 160  # dmel-16k and mel-16k: 16 kHz, 100 frames/s


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict:
    """A corpus, a prompt (0.2 s) and one trained run folder per LM kind."""
    root = tmp_path_factory.mktemp("lm_cli")
    manifest = write_corpus(root / "corpus")
    prompt = root / "prompt.wav"
    sf.write(prompt, 0.3 * np.sin(2 * np.pi * 220 * np.arange(3200) / 16000).astype(np.float32), 16000)
    out = {"root": root, "manifest": manifest, "prompt": prompt}
    for kind, tokenizer, model in [("token", "dmel-16k", "token-small"), ("codec", "codec-16k-default", "token-small"),
                                   ("continuous", "mel-16k", "continuous-small")]:
        args = ["lm", "train", "--tokenizer", tokenizer, "--data", str(manifest), "--model", model,
                "--out", str(root / kind), "--steps", "4", "--no-progress"]
        for item in TINY + [f"data.cache_dir={root / 'cache'}"] + (["model.pattern=parallel"] if kind == "token" else []):
            args += ["--set", item]
        assert main(args) == 0
        out[kind] = root / kind
    return out


@pytest.mark.parametrize("kind", ["token", "codec", "continuous"])
def test_generate_writes_prompt_plus_continuation(runs, kind, tmp_path):
    target = tmp_path / "out.wav"
    assert main(["generate", "--lm", str(runs[kind]), "--prompt", str(runs["prompt"]), "--seconds", "0.3",
                 "--seed", "1", "--top-k", "8", str(target)]) == 0
    audio, rate = sf.read(target)
    assert rate == 16000 and len(audio) == 3200 + 4800
    assert np.isfinite(audio).all() and np.abs(audio[3200:]).max() > 0
    assert not list(tmp_path.glob(".*"))  # atomic write: no temporary file left behind


def test_generate_is_seeded(runs, tmp_path):
    paths = [tmp_path / f"{i}.wav" for i in range(3)]
    for path, seed in zip(paths, [0, 0, 1]):
        assert main(["generate", "--lm", str(runs["token"]), "--prompt", str(runs["prompt"]), "--seconds", "0.2",
                     "--seed", str(seed), str(path)]) == 0
    a, b, c = (sf.read(p)[0] for p in paths)
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def one_line_error(capsys, argv: list[str], match: str) -> None:
    assert main(argv) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("audiolatent: error:") and "\n" not in err and "Traceback" not in err
    assert match in err, err


def test_errors_exit_1_with_one_line(runs, tmp_path, capsys):
    prompt, out = str(runs["prompt"]), str(tmp_path / "x.wav")
    one_line_error(capsys, ["generate", "--lm", str(tmp_path / "nope"), "--prompt", prompt, "--seconds", "1", out],
                   "no such LM checkpoint")
    one_line_error(capsys, ["generate", "--lm", str(runs["manifest"].parent), "--prompt", prompt, "--seconds", "1", out],
                   "no checkpoint")
    short = tmp_path / "short.wav"
    sf.write(short, np.zeros(100, np.float32), 16000)
    one_line_error(capsys, ["generate", "--lm", str(runs["token"]), "--prompt", str(short), "--seconds", "1", out],
                   "shorter than one frame")
    one_line_error(capsys, ["generate", "--lm", str(runs["token"]), "--prompt", str(tmp_path / "missing.wav"),
                            "--seconds", "1", out], "missing.wav")
    one_line_error(capsys, ["generate", "--lm", str(runs["token"]), "--prompt", prompt, "--seconds", "1",
                            "--top-p", "1.5", out], "--top-p")
    # an LM whose tokenizer cannot be loaded any more
    broken = tmp_path / "broken"
    checkpoint = next((runs["token"] / "checkpoints").iterdir())
    (broken / "step_000004").mkdir(parents=True)
    (broken / "step_000004" / "model.safetensors").write_bytes((checkpoint / "model.safetensors").read_bytes())
    header = load_yaml(checkpoint / "lm_config.yaml")
    header["tokenizer"]["reference"] = "gone-16k"
    save_yaml(header, broken / "step_000004" / "lm_config.yaml")
    one_line_error(capsys, ["generate", "--lm", str(broken / "step_000004"), "--prompt", prompt, "--seconds", "1", out],
                   "tokenizer 'gone-16k' cannot be loaded")
    assert not Path(out).exists()
    # training: a continuous LM on a discrete tokenizer, an unknown config
    train = ["lm", "train", "--tokenizer", "dmel-16k", "--data", str(runs["manifest"]), "--out", str(tmp_path / "r"),
             "--set", f"data.cache_dir={runs['root'] / 'cache'}"]
    one_line_error(capsys, train + ["--model", "continuous-small"], "cannot model the discrete codes")
    one_line_error(capsys, train + ["--model", "no-such-config"], "no-such-config")
    one_line_error(capsys, train + ["--model", "token-small", "--resume"], "no checkpoint")


def test_lm_trains_on_a_variable_rate_codec_and_generate_samples_durations(runs, tmp_path):
    """A (random-weight) codec with the segment bottleneck: the LM models tokens and durations as
    codebooks of one frame per segment, and generate advances time by the sampled durations."""
    import torch

    from audiolatent.tokenizers.codec import build_codec

    config = load_yaml(Path(__file__).resolve().parents[2] / "src/audiolatent/configs/codecs/tiny-16k.yaml")
    config["bottleneck"] = {"kind": "segment", "max_length": 4,
                            "quantizer": {"kind": "rvq", "n_codebooks": 2, "codebook_size": 16, "kmeans_init": False}}
    torch.manual_seed(0)
    codec_dir = build_codec(config).eval().save(tmp_path / "varrate-codec")
    run = tmp_path / "lm"
    args = ["lm", "train", "--tokenizer", str(codec_dir), "--data", str(runs["manifest"]), "--model", "token-small",
            "--out", str(run), "--steps", "4", "--no-progress"]
    for item in TINY + [f"data.cache_dir={tmp_path / 'cache'}"]:
        args += ["--set", item]
    assert main(args) == 0
    target = tmp_path / "out.wav"
    assert main(["generate", "--lm", str(run), "--prompt", str(runs["prompt"]), "--seconds", "0.3", "--seed", "1",
                 str(target)]) == 0
    audio, rate = sf.read(target)
    assert rate == 16000 and len(audio) == 3200 + 4800 and np.isfinite(audio).all()
