"""Tests of audiolatent.lm.probe: the bench's modelability probes on streams of known entropy."""

import math

import pytest
import torch

from audiolatent.lm.probe import (
    evaluate_continuous_probe,
    evaluate_token_probe,
    init_heads_to_unigram,
    train_continuous_probe,
    train_token_probe,
)
from audiolatent.lm.token_lm import TokenLM

TINY = dict(dim=32, layers=1, heads=2)


def test_tiny_token_lm_overfits_a_repeated_sequence():
    sequence = torch.randint(0, 16, (2, 24), generator=torch.Generator().manual_seed(0))
    result = train_token_probe([sequence], [16, 16], 50.0, pattern="delay", steps=60, dim=64, layers=1, heads=2,
                               lr=1e-2, batch_frames=96, window_frames=24)
    report = evaluate_token_probe(result, [sequence])
    assert max(report["bits_per_token"]) < 0.1
    assert result.train_losses[-1] < result.train_losses[0]


@pytest.mark.parametrize("pattern", ["delay", "flat"])
def test_constant_stream_costs_about_zero_bits(pattern):
    constant = [torch.full((2, 100), 3, dtype=torch.long)]
    result = train_token_probe(constant, [16, 16], 50.0, pattern=pattern, steps=60, batch_frames=256, window_frames=32, **TINY)
    report = evaluate_token_probe(result, constant)
    assert report["bits_per_second"] < 0.02 * report["nominal_bits_per_second"]
    assert report["unigram_bits_per_second"] == 0.0


def test_uniform_random_codes_cost_log2_codebook_size_on_held_out_data():
    generator = torch.Generator().manual_seed(0)
    train = [torch.randint(0, 16, (2, 200), generator=generator) for _ in range(10)]
    test = [torch.randint(0, 16, (2, 200), generator=generator) for _ in range(4)]
    result = train_token_probe(train, [16, 16], 50.0, pattern="delay", steps=40, batch_frames=512, window_frames=64, **TINY)
    report = evaluate_token_probe(result, test)
    for bits in report["bits_per_token"]:
        assert bits == pytest.approx(4.0, rel=0.05)
    assert report["bits_per_frame"] == pytest.approx(sum(report["bits_per_token"]))
    assert report["bits_per_second"] == pytest.approx(50.0 * report["bits_per_frame"])
    assert report["bits_per_second_per_codebook"] == pytest.approx([50.0 * b for b in report["bits_per_token"]])
    assert report["nominal_bits_per_second"] == pytest.approx(400.0)
    assert report["ratio_to_nominal"] == pytest.approx(report["bits_per_frame"] / 8.0)
    assert report["n_frames"] == 800


def test_an_untrained_probe_starts_at_the_unigram_rate_and_a_short_budget_stays_near_it():
    # i.i.d. codes with a skewed distribution: nothing to learn beyond the unigram model
    generator = torch.Generator().manual_seed(0)
    probs = torch.tensor([0.5, 0.2, 0.1, 0.1, 0.05, 0.05] + [0.0] * 10)
    draw = lambda n: torch.multinomial(probs, 2 * n, replacement=True, generator=generator).reshape(2, n)  # noqa: E731
    train, test = [draw(400) for _ in range(5)], [draw(400) for _ in range(2)]
    model = TokenLM([16, 16], pattern="delay", dim=32, num_layers=1, num_heads=2)
    init_heads_to_unigram(model, train)
    entropy = float(-(probs[probs > 0] * probs[probs > 0].log2()).sum())  # 2.06 bits
    untrained = evaluate_token_probe(model, test)
    assert untrained["bits_per_token"] == pytest.approx([entropy] * 2, abs=0.1)
    result = train_token_probe(train, [16, 16], 50.0, steps=5, batch_frames=256, window_frames=64, **TINY)
    report = evaluate_token_probe(result, test)
    assert report["ratio_to_unigram"] < 1.05  # five steps cannot push it far above the order-0 rate


def autoregressive_process(n_items, n_frames, generator, coefficient=0.9, noise_std=0.3):
    """x_t = c x_{t-1} + N(0, noise_std^2) per dim, D = 2, offset by (1, -2); stationary start."""
    items = []
    for _ in range(n_items):
        noise = torch.randn(2, n_frames, generator=generator) * noise_std
        x = torch.zeros(2, n_frames)
        x[:, 0] = noise[:, 0] / math.sqrt(1 - coefficient**2)
        for t in range(1, n_frames):
            x[:, t] = coefficient * x[:, t - 1] + noise[:, t]
        items.append(x + torch.tensor([[1.0], [-2.0]]))
    return items


def test_gaussian_probe_approaches_the_true_conditional_nll_and_r2():
    generator = torch.Generator().manual_seed(0)
    train, test = autoregressive_process(8, 200, generator), autoregressive_process(3, 200, generator)
    result = train_continuous_probe(train, 50.0, head="gaussian", steps=100, batch_frames=512, window_frames=64, **TINY)
    report = evaluate_continuous_probe(result, test)
    true_nll = 2 * 0.5 * math.log(2 * math.pi * math.e * 0.3**2)  # nats per frame, D = 2
    assert report["nll_per_frame"] == pytest.approx(true_nll, abs=0.15)
    assert report["nll_per_second"] == pytest.approx(50.0 * report["nll_per_frame"])
    assert report["r2"] == pytest.approx(0.81, abs=0.08)  # R^2 of the best predictor = c^2


@pytest.mark.parametrize("head", ["gmm", "flow"])
def test_other_heads_run_through_the_continuous_probe(head):
    generator = torch.Generator().manual_seed(0)
    data = autoregressive_process(2, 40, generator)
    result = train_continuous_probe(data, 50.0, head=head, steps=5, batch_frames=64, window_frames=16,
                                    head_kwargs={"n_steps": 4} if head == "flow" else None, **TINY)
    report = evaluate_continuous_probe(result, data)
    assert report["n_frames"] == 80 and math.isfinite(report["r2"])
    assert (report["nll_per_frame"] is None) == (head == "flow")


def test_probe_rejects_empty_input():
    with pytest.raises(ValueError):
        train_token_probe([], [4], 50.0)


@pytest.mark.parametrize("pattern", ["flat", "parallel", "delay", "valle", "depth"])
def test_every_pattern_trains_and_is_reproducible_from_its_seed(pattern):
    codes = [torch.randint(0, 8, (3, 30), generator=torch.Generator().manual_seed(i)) for i in range(2)]
    reports = []
    for _ in range(2):
        result = train_token_probe(codes, [8, 8, 8], 25.0, pattern=pattern, steps=3, batch_frames=64, window_frames=16, seed=7, **TINY)
        reports.append(evaluate_token_probe(result, codes))
    assert reports[0] == reports[1]
    assert len(reports[0]["bits_per_token"]) == 3 and reports[0]["n_frames"] == 60
