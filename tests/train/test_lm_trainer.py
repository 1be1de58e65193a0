"""LM training: the latent cache is reused, loss falls for token and continuous LMs, checkpoints
load, resume is exact, and a two-process gloo run keeps its replicas identical."""

from __future__ import annotations

import json
import os
import textwrap
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from audiolatent.core.errors import CheckpointError, ConfigError
from audiolatent.lm.errors import LMError
from audiolatent.lm.latent_cache import encode_corpus
from audiolatent.train.lm_config import load_lm_config
from audiolatent.train.lm_trainer import LMTrainer, load_lm
from tests.train.torchrun import run_torchrun

REPO = Path(__file__).resolve().parents[2]

#: a CPU-sized model for tests: one layer, width 16, short windows
TINY = ["model.dim=16", "model.layers=1", "model.heads=2", "data.window_frames=24", "data.batch_size=4",
        "optim.lr=1.0e-2", "schedule.warmup_steps=2", "log_every=1", "eval_every=0", "checkpoint_every=0"]


def write_corpus(folder: Path) -> Path:
    """Three 0.6 s synthetic 16 kHz files (gliding harmonic tones + noise), 2 train + 1 test, as a manifest."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    rows = []
    t = np.arange(9600) / 16000
    for i, split in enumerate(["train", "train", "test"]):
        f0 = 150 + 60 * i + 40 * np.sin(2 * np.pi * 1.5 * t)
        phase = 2 * np.pi * np.cumsum(f0) / 16000
        audio = sum(0.3 / h * np.sin(h * phase) for h in (1, 2, 3)) + 0.01 * rng.standard_normal(t.size)
        sf.write(folder / f"tone{i}.wav", audio.astype(np.float32), 16000)
        rows.append({"path": f"tone{i}.wav", "split": split})
    manifest = folder / "manifest.jsonl"
    manifest.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return manifest


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    return write_corpus(tmp_path_factory.mktemp("corpus"))


def tiny_config(kind: str, tmp_path: Path, *extra: str, steps: int = 10):
    base = "token-small" if kind == "token" else "continuous-small"
    pattern = ["model.pattern=parallel"] if kind == "token" else []
    return load_lm_config(base, TINY + pattern + [f"steps={steps}", f"data.cache_dir={tmp_path / 'cache'}", *extra])


def train_losses(out: Path) -> dict[int, float]:
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    return {r["step"]: r["loss"] for r in rows if r["split"] == "train"}


def test_cache_is_reused_and_invalidated_by_mtime(corpus, tmp_path):
    from audiolatent import load_tokenizer

    tok = load_tokenizer("dmel-16k")
    first = encode_corpus(tok, corpus, cache_dir=tmp_path)
    assert (first.n_encoded, first.n_cached) == (3, 0) and first.is_discrete
    files = sorted(first.cache_dir.glob("*.latent"))
    stamps = [f.stat().st_mtime_ns for f in files]
    second = encode_corpus(tok, corpus, cache_dir=tmp_path)
    assert (second.n_encoded, second.n_cached) == (0, 3)
    assert [f.stat().st_mtime_ns for f in files] == stamps  # nothing rewritten
    assert all(torch.equal(a, b) for a, b in zip(first.items, second.items))
    assert first.items[0].shape == (80, 60)  # [K, T]: 0.6 s at 100 frames/s
    # a modified audio file is encoded again; a split selects files
    os.utime(corpus.parent / "tone2.wav", ns=(1, 1))
    third = encode_corpus(tok, corpus, split="test", cache_dir=tmp_path)
    assert (third.n_encoded, third.n_cached, len(third.items)) == (1, 0, 1)
    # another tokenizer gets its own folder
    mel = encode_corpus(load_tokenizer("mel-16k"), corpus, split="train", cache_dir=tmp_path)
    assert mel.cache_dir != first.cache_dir and not mel.is_discrete and mel.n_encoded == 2


@pytest.mark.parametrize("kind, tokenizer", [("token", "dmel-16k"), ("continuous", "mel-16k")])
def test_loss_falls_and_checkpoint_loads(corpus, tmp_path, kind, tokenizer):
    config = tiny_config(kind, tmp_path, "eval_every=12", steps=12)
    trainer = LMTrainer(config, tokenizer, [str(corpus)], tmp_path / "run", progress=False)
    result = trainer.fit()
    losses = list(train_losses(tmp_path / "run").values())
    assert len(losses) == 12 and np.mean(losses[-3:]) < np.mean(losses[:3])
    key = "eval/bits_per_second" if kind == "token" else "eval/nll_per_second"
    assert np.isfinite(result["eval"][key])
    lm = load_lm(tmp_path / "run")
    assert lm.tokenizer == tokenizer and lm.step == 12 and lm.frame_rate == 100.0
    assert lm.is_discrete == (kind == "token") and (lm.mean is None) == (kind == "token")
    for name, tensor in trainer.model.state_dict().items():
        assert torch.equal(lm.model.state_dict()[name], tensor), name
    assert sorted(p.name for p in lm.directory.iterdir()) == ["lm_config.yaml", "model.safetensors", "trainer_state.pt"]


def _new_process_rng(seed: int) -> None:
    """What a fresh process has: Python's and NumPy's global generators seeded from OS entropy."""
    import random

    random.seed(seed)
    np.random.seed(seed)


def test_resume_is_exact(corpus, tmp_path):
    config = tiny_config("token", tmp_path, steps=6)
    _new_process_rng(101)
    LMTrainer(config, "dmel-16k", [str(corpus)], tmp_path / "straight", progress=False).fit()
    _new_process_rng(202)
    LMTrainer(config, "dmel-16k", [str(corpus)], tmp_path / "resumed", progress=False).fit(stop_after=3)
    assert train_losses(tmp_path / "resumed").keys() == {1, 2, 3}
    _new_process_rng(303)
    LMTrainer(config, "dmel-16k", [str(corpus)], tmp_path / "resumed", resume=True, progress=False).fit()
    straight, resumed = train_losses(tmp_path / "straight"), train_losses(tmp_path / "resumed")
    assert sorted(resumed) == list(range(1, 7))
    for step in straight:
        assert resumed[step] == pytest.approx(straight[step], abs=1e-6, rel=1e-6), step
    a, b = load_lm(tmp_path / "straight").model.state_dict(), load_lm(tmp_path / "resumed").model.state_dict()
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)
    # the RNG states too, although "straight" filled the latent cache and "resumed" read it (issue 15, case 11)
    def saved_rng(run):
        step = (run / "latest").read_text().strip()
        return torch.load(run / "checkpoints" / step / "trainer_state.pt", weights_only=True)["rng"]
    x, y = saved_rng(tmp_path / "straight"), saved_rng(tmp_path / "resumed")
    assert x["python"] == y["python"] and torch.equal(x["numpy"]["keys"], y["numpy"]["keys"])
    assert x["numpy"]["pos"] == y["numpy"]["pos"] and torch.equal(x["torch"], y["torch"])


def test_user_errors(corpus, tmp_path):
    with pytest.raises(LMError, match="continuous LM .* discrete codes"):
        LMTrainer(tiny_config("continuous", tmp_path), "dmel-16k", [str(corpus)], tmp_path / "a", progress=False)
    with pytest.raises(LMError, match="token LM .* continuous latent"):
        LMTrainer(tiny_config("token", tmp_path), "mel-16k", [str(corpus)], tmp_path / "b", progress=False)
    with pytest.raises(LMError, match="cannot be loaded"):
        LMTrainer(tiny_config("token", tmp_path), "no-such-tokenizer", [str(corpus)], tmp_path / "c", progress=False)
    with pytest.raises(CheckpointError):
        LMTrainer(tiny_config("token", tmp_path), "dmel-16k", [str(corpus)], tmp_path / "d", resume=True, progress=False)
    with pytest.raises(CheckpointError, match="no such LM checkpoint"):
        load_lm(tmp_path / "missing")
    with pytest.raises(ConfigError, match="model.kind"):
        load_lm_config("token-small", ["model.kind=diffusion"])
    with pytest.raises(ConfigError, match="model.head"):
        load_lm_config("continuous-small", ["model.head=nope"])


SCRIPT = textwrap.dedent('''
    import json, os, sys
    import torch
    torch.set_num_threads(1)
    from audiolatent.train.lm_config import load_lm_config
    from audiolatent.train.lm_trainer import LMTrainer

    config, data, out = load_lm_config("continuous-small", json.loads(sys.argv[1])), sys.argv[2], sys.argv[3]
    trainer = LMTrainer(config, "mel-16k", [data], out, progress=False)
    result = trainer.fit()
    torch.save({"model": trainer.model.state_dict(), "step": result["step"]},
               os.path.join(out, f"rank{trainer.ctx.rank}.pt"))
    trainer.close()
''')


@pytest.mark.slow
def test_two_process_gloo_replicas_stay_identical(corpus, tmp_path):
    overrides = TINY + ["steps=3", f"data.cache_dir={tmp_path / 'cache'}"]
    script = tmp_path / "run.py"
    script.write_text(SCRIPT)
    out = tmp_path / "ddp"
    out.mkdir()
    env = {**os.environ, "OMP_NUM_THREADS": "1",
           "PYTHONPATH": str(REPO / "src") + os.pathsep + os.environ.get("PYTHONPATH", "")}
    done = run_torchrun([str(script), json.dumps(overrides), str(corpus), str(out)], env, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    r0, r1 = torch.load(out / "rank0.pt"), torch.load(out / "rank1.pt")
    assert r0["step"] == r1["step"] == 3
    for name, tensor in r0["model"].items():
        assert torch.equal(tensor, r1["model"][name]), name
    assert load_lm(out).step == 3
