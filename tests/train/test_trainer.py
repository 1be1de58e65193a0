"""Trainer: loss falls, exact resume, checkpoints (atomic, loadable, corrupt -> CheckpointError),
non-finite steps skipped then fatal, config loading. A tiny codec (8 channels, ratios (2, 4),
RVQ 2 x 16) on three 0.5 s synthetic files, 0.1 s crops, batch 2, one thread."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from audiolatent.core.audio import save_audio
from audiolatent.core.errors import CheckpointError, ConfigError
from audiolatent.core.registry import load_tokenizer
from audiolatent.train.checkpointing import load_training_checkpoint
from audiolatent.train.config import load_train_config
from audiolatent.train.trainer import NonFiniteLossError, Trainer, lr_multiplier

TINY_MODEL = {
    "sample_rate": 16000,
    "encoder": {"dimension": 8, "n_filters": 4, "ratios": [2, 4], "n_residual_layers": 1, "causal": True},
    "bottleneck": {"kind": "rvq", "n_codebooks": 2, "codebook_size": 16},
}


def tiny_config(**changes) -> dict:
    """A training config dict for the tiny codec; ``changes`` replace top-level keys."""
    config = {
        "model": TINY_MODEL,
        "data": {"crop_seconds": 0.1, "batch_size": 2, "train_split": None, "eval_split": None,
                 "eval_crop_seconds": 0.1, "eval_max_files": 2},
        "losses": {"mel_options": {"window_lengths": [64, 256], "n_mels": [16, 32]}},
        "discriminators": [{"kind": "mpd", "periods": [2, 3], "channels": [4, 8]}],
        "optim": {"lr": 1e-3},
        "steps": 10, "log_every": 1, "eval_every": 0, "checkpoint_every": 5, "keep_last": 2, "n_samples": 1,
    }
    config.update(changes)
    return config


def write_dataset(folder: Path, n_files: int = 3, seconds: float = 0.5) -> Path:
    """``n_files`` noisy sines at 16 kHz in ``folder``."""
    rng = np.random.default_rng(0)
    t = np.arange(int(seconds * 16000)) / 16000
    for i in range(n_files):
        x = 0.4 * np.sin(2 * np.pi * (200 + 150 * i) * t) + 0.05 * rng.standard_normal(t.size)
        save_audio(folder / f"tone{i}.wav", torch.tensor(x, dtype=torch.float32)[None], 16000)
    return folder


@pytest.fixture
def dataset(tmp_path) -> Path:
    folder = tmp_path / "data"
    folder.mkdir()
    return write_dataset(folder)


def train(config: dict, data: Path, out: Path, **kwargs) -> tuple[Trainer, dict]:
    trainer = Trainer(load_train_config(config), [str(data)], out, progress=False, **kwargs)
    return trainer, trainer.fit()


def train_losses(out: Path) -> dict[int, float]:
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    return {r["step"]: r["loss"] for r in records if r["split"] == "train"}


def test_loss_falls_and_writes_run_folder(dataset, tmp_path):
    out = tmp_path / "run"
    config = tiny_config(steps=30, log_every=5, eval_every=15, checkpoint_every=10)
    trainer, result = train(config, dataset, out)
    losses = train_losses(out)
    assert losses[30] < 0.7 * losses[5]
    assert result["step"] == 30 and not result["stopped_early"]
    assert (out / "latest").read_text().strip() == "step_000030"
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["step_000020", "step_000030"]  # keep_last=2
    tok = load_tokenizer(str(out / "checkpoints" / "step_000030"))
    assert tok.sample_rate == 16000
    run_folder = load_tokenizer(str(out))  # a run folder loads its latest checkpoint
    assert run_folder.name.endswith("step_000030")
    assert all(torch.equal(a, b) for a, b in zip(run_folder.state_dict().values(), tok.state_dict().values()))
    (out / "latest").write_text("step_000010")  # deleted by keep_last
    with pytest.raises(CheckpointError, match="points at 'step_000010'"):
        load_tokenizer(str(out))
    run = json.loads((out / "run.json").read_text())
    assert run["config"]["steps"] == 30 and "torch" in run["environment"]
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    evals = [r for r in records if r["split"] != "train"]
    assert {e["split"] for e in evals} == {"all"}  # eval_split None: scored on every file, and labelled so
    assert [e["step"] for e in evals] == [15, 30] and "eval/usage/1" in evals[0] and evals[0]["eval/mel_distance"] > 0
    assert sorted(p.name for p in (out / "samples" / "step_000015").iterdir()) == ["00_tone0.ref.wav", "00_tone0.wav"]


@pytest.mark.parametrize("balancer", [False, True])
def test_resume_is_exact(dataset, tmp_path, balancer):
    # GAN starts mid-run so resume covers discriminators, their optimiser and the warm-up switch.
    config = tiny_config(steps=8, checkpoint_every=4, adversarial_start_step=3,
                         losses={"balancer": balancer, "mel_options": {"window_lengths": [64, 256], "n_mels": [16, 32]}})
    config["model"] = {**TINY_MODEL, "bottleneck": {**TINY_MODEL["bottleneck"], "quantizer_dropout": 0.5}}
    # Augmented crops too: every augmentation is drawn from (seed, epoch, index), so a resume sees the same.
    config["data"] = {**config["data"], "speed": [0.9, 1.1], "gain_db": [-3.0, 3.0], "eval_split": None,
                      "pitch_semitones": [-2.0, 2.0], "eq_db": 3.0, "reverb_rt60": [0.05, 0.2], "reverb_prob": 0.5,
                      "noise_snr_db": [20.0, 40.0], "band_limit_hz": [3400.0, 7000.0], "band_limit_prob": 0.5}
    trainer, _ = train(config, dataset, tmp_path / "straight")
    assert trainer.train_set.speed == (0.9, 1.1) and trainer.train_set.gain_db == (-3.0, 3.0)
    assert trainer.train_set.augment.pitch_semitones == (-2.0, 2.0) and trainer.train_set.augment.reverb_prob == 0.5
    assert_resume_is_exact(config, dataset, tmp_path)


def assert_resume_is_exact(config: dict, data: Path, tmp_path: Path) -> None:
    """Half of ``config``'s steps, then ``--resume`` for the rest, give the losses and weights of
    ``tmp_path / "straight"`` (a run of the whole ``config`` trained before)."""
    steps = config["steps"]
    train({**config, "steps": steps // 2}, data, tmp_path / "resumed")
    train(config, data, tmp_path / "resumed", resume=True)
    straight, resumed = train_losses(tmp_path / "straight"), train_losses(tmp_path / "resumed")
    assert sorted(straight) == sorted(resumed) == list(range(1, steps + 1))
    for step in straight:
        assert resumed[step] == pytest.approx(straight[step], abs=1e-6, rel=1e-6), step
    a = load_training_checkpoint(tmp_path / "straight").weights
    b = load_training_checkpoint(tmp_path / "resumed").weights
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)


def test_init_from_loads_weights_with_fresh_optimiser(dataset, tmp_path):
    train(tiny_config(steps=3), dataset, tmp_path / "first")
    trainer = Trainer(load_train_config(tiny_config(steps=2)), [str(dataset)], tmp_path / "second",
                      init_from=tmp_path / "first", progress=False)
    weights = load_training_checkpoint(tmp_path / "first").weights
    state = trainer.codec.state_dict()
    assert all(torch.equal(state[k], weights[k]) for k in weights)
    assert trainer.step == 0 and not trainer.optimizer.state


@pytest.mark.parametrize("weights", ["int8", "float16"])
def test_init_from_a_compressed_export_dequantises(dataset, tmp_path, weights):
    """Fine-tuning a shipped (int8) or float16 export starts from its dequantised weights."""
    from audiolatent.core.checkpoint import save_checkpoint

    train(tiny_config(steps=2), dataset, tmp_path / "first")
    from audiolatent.train.checkpointing import resolve_checkpoint

    exported = load_tokenizer(str(resolve_checkpoint(tmp_path / "first")))
    save_checkpoint(exported, tmp_path / "export", weights=weights)
    reference = load_tokenizer(str(tmp_path / "export")).state_dict()  # load_checkpoint's dequantisation
    trainer = Trainer(load_train_config(tiny_config(steps=2)), [str(dataset)], tmp_path / "second",
                      init_from=tmp_path / "export", progress=False)
    state = trainer.codec.state_dict()
    assert all(torch.equal(state[k], reference[k]) for k in reference)
    assert not all(torch.equal(state[k], exported.state_dict()[k]) for k in state if state[k].is_floating_point())


def test_init_from_accepts_the_name_of_a_shipped_codec():
    from audiolatent.train.checkpointing import resolve_checkpoint
    from audiolatent.tokenizers.pretrained import pretrained_path

    assert resolve_checkpoint("codec-16k-default") == pretrained_path("codec-16k-default")
    checkpoint = load_training_checkpoint("codec-16k-default", need_state=False)
    assert all(v.dtype != torch.int8 for v in checkpoint.weights.values())
    assert not any(k.endswith("__scale__") for k in checkpoint.weights)
    with pytest.raises(CheckpointError, match="no checkpoint there"):
        resolve_checkpoint("no-such-codec")


def test_init_partial_loads_what_fits_and_lists_the_rest(dataset, tmp_path):
    """A bigger last codebook count changes one tensor family only: --init-partial loads the rest."""
    train(tiny_config(steps=2), dataset, tmp_path / "first")
    wider = tiny_config(steps=2, model={**TINY_MODEL, "bottleneck": {"kind": "rvq", "n_codebooks": 2, "codebook_size": 32}})
    with pytest.raises(CheckpointError, match="init-partial"):
        Trainer(load_train_config(wider), [str(dataset)], tmp_path / "strict", init_from=tmp_path / "first")
    with pytest.raises(ConfigError, match="init_partial needs init_from"):
        Trainer(load_train_config(wider), [str(dataset)], tmp_path / "none", init_partial=True)
    trainer = Trainer(load_train_config(wider), [str(dataset)], tmp_path / "second", init_from=tmp_path / "first",
                      init_partial=True, progress=False)
    weights = load_training_checkpoint(tmp_path / "first").weights
    state = trainer.codec.state_dict()
    fresh = trainer.initialised_from["fresh"]
    assert fresh and all("bottleneck" in k for k in fresh)
    assert all(state[k].shape != weights[k].shape for k in fresh if k in weights)
    loaded = [k for k in state if k not in fresh]
    assert any(k.startswith("encoder.") for k in loaded) and all(torch.equal(state[k], weights[k]) for k in loaded)
    trainer.fit()
    trainer.close()
    run = json.loads((tmp_path / "second" / "run.json").read_text())
    assert run["initialised_from"]["partial"] is True and run["initialised_from"]["fresh"] == fresh


def test_init_partial_warm_starts_a_subframe_head_from_a_single_frame_one(dataset, tmp_path):
    """The default codec's stage 2: same codec with a two-sub-frame Vocos head, every other tensor
    loaded, the head started from the trained single-frame head (not from scratch)."""
    vocos = {**TINY_MODEL, "decoder": {"kind": "vocos", "dim": 16, "n_layers": 1, "n_fft": 32}}
    train(tiny_config(steps=2, model=vocos), dataset, tmp_path / "single")
    sub = {**vocos, "decoder": {**vocos["decoder"], "n_fft": 16, "subframes": 2}}
    trainer = Trainer(load_train_config(tiny_config(steps=2, model=sub)), [str(dataset)], tmp_path / "sub",
                      init_from=tmp_path / "single", init_partial=True, progress=False)
    source = load_training_checkpoint(tmp_path / "single").weights
    init = trainer.initialised_from
    assert init["warm_started"] == ["decoder.head.proj.weight", "decoder.head.proj.bias"] and init["fresh"] == []
    head = trainer.codec.decoder.head
    expected = type(head)(16, 16, 4, subframes=2)
    expected.warm_start_from_single_frame(source["decoder.head.proj.weight"], source["decoder.head.proj.bias"])
    assert torch.equal(head.proj.weight, expected.proj.weight) and torch.equal(head.proj.bias, expected.proj.bias)
    state = trainer.codec.state_dict()
    assert all(torch.equal(state[k], source[k]) for k in init["loaded"]) and len(init["loaded"]) == len(state) - 2
    trainer.close()


def test_missing_and_corrupt_checkpoints_raise_checkpoint_error(dataset, tmp_path):
    config = load_train_config(tiny_config(steps=2, checkpoint_every=0))
    with pytest.raises(CheckpointError, match="no checkpoint"):
        Trainer(config, [str(dataset)], tmp_path / "empty", resume=True)
    out = tmp_path / "run"
    train(tiny_config(steps=2), dataset, out)
    ckpt = out / "checkpoints" / "step_000002"
    (ckpt / "trainer_state.pt").write_bytes(b"not a zip file")
    with pytest.raises(CheckpointError, match="corrupt trainer state"):
        Trainer(config, [str(dataset)], out, resume=True)
    (ckpt / "trainer_state.pt").unlink()
    with pytest.raises(CheckpointError, match="incomplete checkpoint"):
        Trainer(config, [str(dataset)], out, resume=True)
    (ckpt / "model.safetensors").write_bytes(b"\x00" * 10)
    with pytest.raises(CheckpointError, match="corrupt weights"):
        Trainer(config, [str(dataset)], tmp_path / "other", init_from=ckpt)
    (out / "latest").write_text("step_999999\n")
    with pytest.raises(CheckpointError, match="points at"):
        Trainer(config, [str(dataset)], out, resume=True)
    other = load_train_config(tiny_config(steps=2, model={**TINY_MODEL, "bottleneck": {"kind": "rvq", "n_codebooks": 3,
                                                                                       "codebook_size": 16}}))
    train(tiny_config(steps=2), dataset, tmp_path / "run2")
    with pytest.raises(CheckpointError, match="different model config"):
        Trainer(other, [str(dataset)], tmp_path / "run2", resume=True)


def test_nonfinite_steps_are_skipped_then_abort(dataset, tmp_path):
    out = tmp_path / "run"
    trainer = Trainer(load_train_config(tiny_config(steps=20, max_nonfinite=3, checkpoint_every=2)), [str(dataset)],
                      out, progress=False)
    bad_steps = {2, 5, 6, 7, 8, 9}
    trainer.loss_hook = lambda step, losses: (
        {k: v * float("nan") for k, v in losses.items()} if step in bad_steps else losses)
    before = {}

    def spy(step, losses):
        if step == 5:
            before.update({k: v.clone() for k, v in trainer.codec.state_dict().items()})
        return trainer.loss_hook_inner(step, losses)

    trainer.loss_hook_inner, trainer.loss_hook = trainer.loss_hook, spy
    with pytest.raises(NonFiniteLossError, match="3 consecutive"):
        trainer.fit()
    # step 2 skipped then recovered; 5, 6, 7 skipped -> abort at 7 with weights and codebooks untouched
    assert trainer.nonfinite_total == 4 and trainer.step == 6
    after = trainer.codec.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert all(torch.isfinite(v).all() for v in after.values() if v.is_floating_point())
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert records[-1]["step"] == 6 and records[-1]["nonfinite_steps"] == 3 and records[-1]["skipped"] == 1
    assert (out / "latest").read_text().strip() == "step_000006"
    load_tokenizer(str(out / "checkpoints" / "step_000006"))


def test_config_loading_and_overrides(tmp_path):
    codec_yaml = tmp_path / "codec.yaml"
    codec_yaml.write_text(json.dumps(TINY_MODEL))
    train_yaml = tmp_path / "train.yaml"
    train_yaml.write_text("model: codec.yaml\nsteps: 5\n")
    config = load_train_config(train_yaml, ["model.bottleneck.n_codebooks=3", "optim.lr=1e-4", "schedule.kind=cosine"])
    assert config.model["bottleneck"]["n_codebooks"] == 3 and config.optim.lr == 1e-4 and config.steps == 5
    assert config.data.batch_size == 8  # default filled in
    with pytest.raises(ConfigError, match="unknown key"):
        load_train_config(train_yaml, ["optim.lrr=1"])
    with pytest.raises(ConfigError, match="precision"):
        load_train_config(train_yaml, ["precision=fp16"])
    with pytest.raises(ConfigError, match="not found"):
        load_train_config({"model": "nope.yaml"})
    augmented = load_train_config(train_yaml, ["data.speed=[0.9, 1.1]", "data.gain_db=[-6, 6]"])
    assert augmented.data.speed == [0.9, 1.1] and augmented.data.gain_db == [-6, 6]
    with pytest.raises(ConfigError, match=r"data\.speed must satisfy 0 < low <= high"):
        load_train_config(train_yaml, ["data.speed=[0, 1.1]"])
    with pytest.raises(ConfigError, match=r"data\.gain_db must satisfy low <= high"):
        load_train_config(train_yaml, ["data.gain_db=[6, -6]"])
    plain = load_train_config(train_yaml)
    assert plain.data.augmentation() is None and plain.data.respect_band_limit  # defaults: no augmentation
    more = load_train_config(train_yaml, ["data.pitch_semitones=[-3, 3]", "data.eq_db=6", "data.noise_prob=0.5"])
    assert more.data.augmentation().pitch_semitones == (-3.0, 3.0) and more.data.augmentation().eq_db == 6.0
    with pytest.raises(ConfigError, match=r"data\.noise_prob must be a probability"):
        load_train_config(train_yaml, ["data.noise_prob=1.5"])
    with pytest.raises(ConfigError, match=r"data\.band_limit_hz must satisfy 0 < low"):
        load_train_config(train_yaml, ["data.band_limit_hz=[0, 4000]"])


def test_bad_loss_options_are_config_errors_naming_the_field():
    from audiolatent.train.config import LossConfig
    from audiolatent.train.objective import CodecObjective

    # "{sc_weight:1.0}" without a space parses as the key "sc_weight:1.0" in YAML
    bad = LossConfig(stft=1.0, stft_options={"sc_weight:1.0": None})
    with pytest.raises(ConfigError, match=r"losses\.stft_options: unknown option.*sc_weight:1\.0.*space after each colon"):
        CodecObjective(bad, 16000, adversarial=False)
    with pytest.raises(ConfigError, match=r"losses\.mel_options: .*same length"):
        CodecObjective(LossConfig(mel_options={"window_lengths": [64, 128], "n_mels": [10]}), 16000, adversarial=False)
    with pytest.raises(ConfigError, match=r"losses\.stft_options: expected a mapping"):
        CodecObjective(LossConfig(stft=1.0, stft_options=[1, 2]), 16000, adversarial=False)
    good = CodecObjective(LossConfig(stft=1.0, stft_options={"sc_weight": 1.0, "mag_weight": 0.0}), 16000, adversarial=False)
    assert good.stft.sc_weight == 1.0 and good.stft.mag_weight == 0.0


def test_lr_schedules():
    from audiolatent.train.config import ScheduleConfig

    cosine = lr_multiplier(ScheduleConfig(kind="cosine", warmup_steps=10, min_lr_ratio=0.1), 110)
    assert cosine(0) == pytest.approx(0.1) and cosine(9) == pytest.approx(1.0)
    assert cosine(10) == pytest.approx(1.0) and cosine(110) == pytest.approx(0.1) and cosine(60) == pytest.approx(0.55)
    assert lr_multiplier(ScheduleConfig(kind="exponential", gamma=0.5), 10)(3) == pytest.approx(0.125)
    assert lr_multiplier(ScheduleConfig(), 10)(7) == 1.0


def test_every_packaged_recipe_loads():
    from audiolatent.core.config import packaged_configs

    recipes = packaged_configs("train")
    assert {"default-16k", "default-16k-aug", "speech-rvq-16k", "dac-like-44k"} <= set(recipes)
    for name in recipes:
        config = load_train_config(name)
        assert config.steps >= 1 and config.model, name
    aug = load_train_config("default-16k-aug")
    assert aug.data.speed == [0.9, 1.1] and aug.data.gain_db == [-6.0, 6.0] and aug.data.train_split == "train"
    assert aug.data.augmentation() is None
    voices = load_train_config("default-16k-voices-aug")
    assert voices.data.eval_split == "valid" and voices.data.respect_band_limit and voices.model == aug.model
    assert voices.data.augmentation().active and voices.steps == 21000 < aug.steps and voices.losses == aug.losses


def test_band_limited_files_reach_the_losses_and_the_evaluation(tmp_path, monkeypatch):
    folder = write_dataset(tmp_path / "data")
    manifest = folder / "manifest.jsonl"
    manifest.write_text("\n".join(json.dumps({"path": f"tone{i}.wav", "split": "train", "band_limit_hz": limit})
                                  for i, limit in enumerate([4000, None, 4000])))
    seen = []
    for respect in (True, False):
        config = tiny_config(steps=2, eval_every=2, discriminators=[], checkpoint_every=0,
                             data={**tiny_config()["data"], "batch_size": 3, "respect_band_limit": respect})
        trainer = Trainer(load_train_config(config), [str(manifest)], tmp_path / f"run_{respect}", progress=False)
        original = trainer.objective.reconstruction_losses

        def spy(y, x, discriminators=None, band_limit_hz=None):
            seen.append(None if band_limit_hz is None else sorted(band_limit_hz.tolist()))
            return original(y, x, discriminators, band_limit_hz=band_limit_hz)

        monkeypatch.setattr(trainer.objective, "reconstruction_losses", spy)
        trainer.fit()
        evals = [r for r in map(json.loads, (tmp_path / f"run_{respect}" / "metrics.jsonl").read_text().splitlines())
                 if r["split"] != "train"]
        assert ("eval/mel_distance_in_band" in evals[-1]) == respect
        if respect:
            assert 0 < evals[-1]["eval/mel_distance_in_band"] != evals[-1]["eval/mel_distance"]
    assert seen == [[4000.0, 4000.0, math.inf]] * 2 + [None] * 2
