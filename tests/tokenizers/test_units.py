"""k-means units: the fit recovers known clusters, the bottleneck quantises to them, the codec trains behind them."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from audiolatent.core.audio import save_audio
from audiolatent.core.errors import ConfigError, StreamingError
from audiolatent.core.registry import load_tokenizer
from audiolatent.data.manifest import ManifestEntry
from audiolatent.quantize import build_bottleneck
from audiolatent.quantize.kmeans import load_centroids
from audiolatent.tokenizers.teachers import Teacher
from audiolatent.tokenizers.units import build_teacher, fit_kmeans, parse_teacher, save_centroids


class _Clusters(Teacher):
    """A teacher whose 2-d features at 50 Hz are one of three known points, per 0.2 s of a file."""

    sample_rate, frame_rate, dim, name = 16000, 50.0, 2, "clusters"
    points = torch.tensor([[0.0, 0.0], [5.0, 0.0], [0.0, 5.0]])

    def frame_centres(self, n):
        return (torch.arange(n, dtype=torch.float64) + 0.5) / 50

    def _features(self, audio):
        n = math.ceil(audio.shape[-1] / 320)
        label = (torch.arange(n) // 10 + int(audio.abs().sum() * 1000) % 3) % 3
        return (self.points[label] + 0.01 * torch.randn(n, 2)).t()[None]


def _files(folder, n=4):
    entries = []
    for i in range(n):
        path = folder / f"a{i}.wav"
        save_audio(path, torch.full((1, 16000), 0.001 * (i + 1)), 16000)
        entries.append(ManifestEntry(path=path, id=f"a{i}", duration=1.0, sample_rate=16000, split="train"))
    return entries


def test_fit_finds_the_known_clusters(tmp_path):
    centroids, report = fit_kmeans(_Clusters(), _files(tmp_path), k=3, frame_rate=50.0, iters=10)
    found = sorted(map(tuple, centroids.round(decimals=1).tolist()))
    assert found == [(0.0, 0.0), (0.0, 5.0), (5.0, 0.0)]
    assert report["frames"] == 200 and report["usage"] == 1.0 and report["inertia"] < 1e-3
    save_centroids(centroids, tmp_path / "u.safetensors", report)
    assert torch.equal(load_centroids(tmp_path / "u.safetensors"), centroids)
    with pytest.raises(Exception, match="never overwritten"):
        save_centroids(centroids, tmp_path / "u.safetensors", report)
    with pytest.raises(ConfigError, match="smaller --k"):
        fit_kmeans(_Clusters(), _files(tmp_path)[:1], k=100, frame_rate=50.0)


def test_bottleneck_quantises_to_the_nearest_centroid(tmp_path):
    table = torch.tensor([[0.0, 0.0], [5.0, 0.0], [0.0, 5.0]])
    save_centroids(table, tmp_path / "c.safetensors", {})
    q = build_bottleneck({"kind": "kmeans", "dim": 2, "codebook_size": 3, "centroids": str(tmp_path / "c.safetensors")})
    z = torch.tensor([[[0.4, 4.0, 0.1, 2.4], [0.2, 0.9, 3.0, 2.6]]])  # [1, 2, 4]
    codes = q.encode(z)[0]
    assert codes.tolist() == [[[0, 1, 2, 2]]]
    assert torch.equal(q.decode([codes]), table[[0, 1, 2, 2]].t()[None])
    assert q.stream_specs()[0].codebook_sizes == (3,)
    with pytest.raises(ConfigError, match="codebook_size 4 x dim 2"):
        build_bottleneck({"kind": "kmeans", "dim": 2, "codebook_size": 4, "centroids": str(tmp_path / "c.safetensors")})
    with pytest.raises(ConfigError, match="all zero"):
        build_bottleneck({"kind": "kmeans", "dim": 2, "codebook_size": 3}).train()(z)


def test_teacher_specs():
    assert parse_teacher("hubert:6") == {"kind": "hubert", "layer": 6}
    assert parse_teacher("phone:runs/t") == {"kind": "phone", "path": "runs/t", "output": "hidden"}
    assert parse_teacher("mel-16k") == {"kind": "tokenizer", "name": "mel-16k"}
    assert build_teacher(parse_teacher("mel-16k")).dim == 80
    with pytest.raises(ConfigError, match="unknown kind"):
        build_teacher({"kind": "bert"})
    with pytest.raises(ConfigError, match="integer layer"):
        parse_teacher("wavlm:top")


def test_units_codec_trains_its_decoder_and_refuses_to_stream(tmp_path):
    """mel-16k units fitted on tones; the packaged recipe trains two steps; a checkpoint loads back."""
    from audiolatent.train.config import load_train_config
    from audiolatent.train.trainer import Trainer

    t = np.arange(8000) / 16000
    entries = []
    for i in range(3):
        path = tmp_path / "data" / f"tone{i}.wav"
        save_audio(path, torch.tensor(0.3 * np.sin(2 * np.pi * (150 + 200 * i) * t), dtype=torch.float32)[None], 16000)
        entries.append(ManifestEntry(path=path, id=f"t{i}", duration=0.5, sample_rate=16000, split="train"))
    centroids, report = fit_kmeans(build_teacher({"kind": "tokenizer", "name": "mel-16k"}), entries, k=8, frame_rate=50.0)
    save_centroids(centroids, tmp_path / "u.safetensors", report)
    config = load_train_config("units-16k", [
        f"model.bottleneck.centroids={tmp_path / 'u.safetensors'}", "model.bottleneck.codebook_size=8",
        "model.decoder.dim=16", "model.decoder.n_layers=1", "steps=2", "data.crop_seconds=0.2", "data.batch_size=2",
        "data.train_split=null", "data.eval_split=null", "data.cache=false", "eval_every=0", "checkpoint_every=0",
        "losses.mel_options.window_lengths=[64,256]", "losses.mel_options.n_mels=[16,32]",
    ])
    trainer = Trainer(config, [str(tmp_path / "data")], tmp_path / "run", progress=False)
    assert not any(p.requires_grad for p in trainer.codec.encoder.parameters())
    trainer.fit()
    codec = load_tokenizer(tmp_path / "run" / "checkpoints" / "step_000002")
    assert codec.lookahead is None and not codec.streamable and not codec.causal
    latent = codec.encode(torch.zeros(1, 1, 3200))
    assert latent.streams[0].values.shape == (1, 1, 10) and latent.bits_per_second == pytest.approx(50 * 3)
    assert torch.equal(codec.bottleneck.centroids, centroids)
    with pytest.raises(StreamingError, match="do not stream"):
        with codec.streaming(1):
            pass


def test_cli_fits_units(tmp_path, capsys):
    import json

    from audiolatent.cli.main import main

    _files(tmp_path)
    out = tmp_path / "units.safetensors"
    args = ["fit", "kmeans", "--teacher", "mel-16k", "--k", "4", "--data", str(tmp_path), "--out", str(out), "--no-progress"]
    assert main(args) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["k"] == 4 and report["frames"] == 200 and report["teacher_spec"] == {"kind": "tokenizer", "name": "mel-16k"}
    assert load_centroids(out).shape == (4, 80)
    assert main(args) == 1 and "never overwritten" in capsys.readouterr().err
