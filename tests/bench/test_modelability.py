"""Modelability metrics on latents whose answers are known in closed form."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from audiolatent.bench.modelability import (
    QUICK_BUDGET,
    adjacent_smoothness,
    effective_rank,
    frame_phone_labels,
    frechet_distance,
    logmel_statistics,
    measure_modelability,
    phoneme_probe,
    with_budget,
)
from audiolatent.core.latent import Latent, Stream

FRAME_RATE = 50.0
TINY = with_budget(QUICK_BUDGET, steps=60, dim=32, batch_frames=512, window_frames=32, phone_steps=100)


def _latent(codes: torch.Tensor, size: int) -> Latent:
    """One file's latent from ``[K, T]`` codes."""
    return Latent([Stream(codes[None].long(), FRAME_RATE, (size,) * codes.shape[0], "codes")], 16000)


def test_constant_codes_cost_almost_nothing():
    train = [_latent(torch.full((1, 400), 3), 16) for _ in range(2)]
    test = [_latent(torch.full((1, 200), 3), 16)]
    result = measure_modelability(None, train, test, budget=TINY)
    bits_per_token = result["probe_bits_per_second"] / FRAME_RATE
    assert bits_per_token < 0.1
    assert result["skipped"]["frechet_logmel"]  # no tokenizer: no continuations, and it says why


def test_uniform_random_codes_cost_log2_of_the_codebook():
    gen = torch.Generator().manual_seed(0)
    train = [_latent(torch.randint(0, 16, (1, 2000), generator=gen), 16)]
    test = [_latent(torch.randint(0, 16, (1, 1000), generator=gen), 16)]
    result = measure_modelability(None, train, test, budget=TINY)
    bits_per_token = result["probe_bits_per_second"] / FRAME_RATE
    assert abs(bits_per_token - math.log2(16)) < 0.2
    assert result["ratio_to_entropy"] == pytest.approx(1.0, abs=0.06)
    assert result["streams"]["codes"]["estimators"]["transformer"]["pattern"] == "flat"


def test_effective_rank_of_known_matrices():
    gen = torch.Generator().manual_seed(0)
    u, v = torch.randn(500, 1, generator=gen), torch.randn(1, 8, generator=gen)
    assert effective_rank(u @ v) == pytest.approx(1.0, abs=1e-3)
    assert effective_rank(torch.eye(8), center=False) == pytest.approx(8.0, abs=1e-9)
    assert effective_rank(torch.randn(20000, 8, generator=gen)) > 7.8


def test_adjacent_smoothness_of_slow_and_white_signals():
    t = torch.arange(2000) / 200
    slow = torch.stack([torch.sin(t), torch.cos(t)])  # one cycle per ~1250 frames
    white = torch.randn(2, 2000, generator=torch.Generator().manual_seed(0))
    assert adjacent_smoothness([slow])["adjacent_cosine"] > 0.99
    assert abs(adjacent_smoothness([white])["adjacent_cosine"]) < 0.1
    assert adjacent_smoothness([white])["adjacent_delta_ratio"] == pytest.approx(1.0, abs=0.1)


def test_frechet_distance_of_identical_statistics_is_zero():
    gen = torch.Generator().manual_seed(0)
    audio = [0.1 * torch.randn(1, 16000, generator=gen), 0.05 * torch.randn(1, 8000, generator=gen)]
    mu, cov = logmel_statistics(audio, 16000)
    assert frechet_distance(mu, cov, mu, cov) == pytest.approx(0.0, abs=1e-6)
    shifted = mu + 0.5
    assert frechet_distance(shifted, cov, mu, cov) == pytest.approx(0.25 * len(mu), rel=1e-6)
    assert frechet_distance(np.zeros(2), np.eye(2), np.zeros(2), 4 * np.eye(2)) == pytest.approx(2.0)  # (1 - 2)^2 x 2


def test_frame_phone_labels_use_frame_centres():
    phones = [("pau", 0.0, 0.1), ("a", 0.1, 0.25)]
    assert frame_phone_labels(phones, 6, 20.0) == ["pau", "pau", "a", "a", "a", None]


def test_phoneme_probe_is_perfect_when_codes_are_phone_ids():
    gen = torch.Generator().manual_seed(0)
    vocab = ["a", "b", "c", "d"]

    def item(n_phones: int):
        ids = torch.randint(0, 4, (n_phones,), generator=gen)
        phones = [(vocab[int(p)], k * 0.1, (k + 1) * 0.1) for k, p in enumerate(ids)]
        codes = ids.repeat_interleave(5)[None]  # 5 frames of 20 ms per 100 ms phone
        noise = torch.randint(0, 8, codes.shape, generator=gen)  # a second, uninformative codebook
        return _latent(torch.cat([codes, noise]), 8), phones

    train, test = [item(40) for _ in range(3)], [item(30)]
    result = measure_modelability(None, [t[0] for t in train], [t[0] for t in test], budget=TINY,
                                  phones_train=[t[1] for t in train], phones_test=[t[1] for t in test])
    phoneme = result["streams"]["codes"]["phoneme"]
    assert phoneme["all"]["accuracy"] == 1.0
    assert phoneme["codebook_0"] == 1.0
    assert phoneme["codebook_1"] < 0.6
    assert result["phoneme_accuracy"] == {"codes": 1.0}
    direct = phoneme_probe(torch.eye(3), ["x", "y", "z"], torch.eye(3), ["x", "y", "z"], steps=50)
    assert direct["accuracy"] == 1.0


def test_continuous_latents_report_nll_r2_and_structure():
    t = torch.arange(600, dtype=torch.float32) / 10
    values = torch.stack([torch.sin(t), torch.cos(t), torch.sin(t) + torch.cos(t)])
    latent = Latent([Stream(values[None], FRAME_RATE, None, "x")], 16000)
    result = measure_modelability(None, [latent], [latent], budget=TINY)
    assert result["r2"] > 0.5
    assert result["nll_per_second"] is not None
    assert result["effective_rank"] == pytest.approx(2.0, abs=0.1)  # third dim is a sum of the other two
    assert result["probe_bits_per_second"] is None


def test_a_stream_too_short_to_probe_is_skipped_and_no_partial_total_is_reported():
    from audiolatent.bench.modelability import QUICK_BUDGET, measure_modelability
    from audiolatent.core.latent import Latent, Stream

    gen = torch.Generator().manual_seed(0)

    def latent(frames):  # a 50 Hz code stream beside a 1 Hz side stream (EnCodec 48 kHz's scale)
        codes = torch.randint(0, 8, (1, 1, frames), generator=gen)
        side = torch.randint(0, 16, (1, 1, max(1, frames // 50)), generator=gen)
        return Latent([Stream(side, 1.0, (16,), "scale"), Stream(codes, 50.0, (8,), "codes")], 16000)

    result = measure_modelability(None, [latent(150) for _ in range(4)], [latent(100)], budget=QUICK_BUDGET)
    assert "train frames" in result["streams"]["scale"]["skipped"] and "stream scale" in result["skipped"]
    assert result["streams"]["codes"]["probe_bits_per_second"] > 0  # the long stream is still measured
    assert result["probe_bits_per_second"] is None and result["estimators"] is None  # not a total over some streams


def test_a_variable_rate_latent_is_scored_per_second_of_audio():
    """Uniform 16-way tokens in segments of 5 frames (10 segments/s) cost 4 bits x 10 = 40 bits/s,
    not 4 x the nominal 50 Hz; the constant durations stream costs almost nothing."""
    gen = torch.Generator().manual_seed(0)

    def latent(n: int) -> Latent:
        durations = torch.full((1, n), 0.1)
        codes = Stream(torch.randint(0, 16, (1, 1, n), generator=gen), FRAME_RATE, (16,), "codes", torch.tensor([n]), durations)
        lengths = Stream(torch.full((1, 1, n), 4), FRAME_RATE, (8,), "durations", torch.tensor([n]), durations)
        return Latent([codes, lengths], 16000)

    result = measure_modelability(None, [latent(2000)], [latent(1000)], budget=TINY)
    assert result["streams"]["codes"]["frame_rate"] == pytest.approx(10.0)
    assert result["streams"]["codes"]["probe_bits_per_second"] == pytest.approx(40.0, abs=2.0)
    assert result["streams"]["durations"]["probe_bits_per_second"] < 1.0
    assert result["probe_bits_per_second"] == pytest.approx(40.0, abs=3.0)
