"""The modelability figure on latents whose entropy rate is known exactly (bench/sources.py).

Every source is measured at the budget the default bench uses (``STANDARD_BUDGET``) and with a
train split of 40,000 frames (800 s at 50 Hz; the built-in corpus gives the 50 Hz codec 85,000).
The headline must land within 5 % of the oracle code length of the test items, and it must
move the right way when the data or the latent change.
"""

from __future__ import annotations


import numpy as np
import pytest
import torch

from audiolatent.bench import sources
from audiolatent.bench.modelability import STANDARD_BUDGET, discrete_estimators, measure_modelability, train_subset
from audiolatent.core.latent import Latent, Stream
from audiolatent.lm.ngram import fit_ngram
from audiolatent.lm.probe import evaluate_continuous_probe, train_continuous_probe

FRAME_RATE = 50.0


@pytest.fixture(scope="module")
def cross():
    return sources.cross_codebook_source(seed=0)


@pytest.mark.parametrize("make, winner", [
    (sources.iid_source, ("unigram", "bigram", "trigram", "transformer")),
    (sources.markov_source, ("bigram", "trigram")),
    (sources.second_order_source, ("trigram",)),  # two frames back: the bigram cannot see it
    (sources.cross_codebook_source, ("bigram", "trigram")),
    (sources.lag_source, ("transformer",)),  # 16 frames back: no n-gram sees it
    (sources.periodic_source, ("transformer",)),
])
def test_headline_is_within_5_percent_of_the_true_rate(make, winner):
    src = make(seed=0)
    result = discrete_estimators(src.train, src.test, src.codebook_sizes, FRAME_RATE, STANDARD_BUDGET)
    bits_per_frame = result["bits_per_second"] / FRAME_RATE
    assert bits_per_frame >= src.oracle_bits_per_frame * 0.99  # an upper bound: nothing beats the true process
    assert bits_per_frame <= src.oracle_bits_per_frame * 1.05, (src.name, result["headline"], bits_per_frame, src.oracle_bits_per_frame)
    assert result["headline"] in winner
    assert abs(src.oracle_bits_per_frame - src.rate_bits_per_frame) < 0.1 * src.rate_bits_per_frame + 0.06
    unigram = result["estimators"]["unigram"]["bits_per_second"]
    # the early-stopped transformer never ends above the unigram it starts from
    assert result["estimators"]["transformer"]["bits_per_second"] <= unigram * 1.01


def test_the_copy_entropy_formula():
    assert sources.copy_entropy(0.0, 256) == 0.0
    assert sources.copy_entropy(1.0, 256) == pytest.approx(8.0)
    # against the plug-in entropy of 400,000 draws of "copy 0 w.p. 0.9, else uniform over 16"
    rng = np.random.default_rng(0)
    draws = np.where(rng.random(400_000) < 0.9, 0, rng.integers(0, 16, 400_000))
    p = np.bincount(draws, minlength=16) / draws.size
    assert sources.copy_entropy(0.1, 16) == pytest.approx(float(-(p * np.log2(p)).sum()), abs=0.01)


def test_more_train_data_lowers_the_ngram_and_more_noise_raises_the_headline(cross):
    full = fit_ngram(cross.train, cross.codebook_sizes, max_order=1)
    small = fit_ngram(train_subset(cross.train, 0.125), cross.codebook_sizes, max_order=1)
    assert sum(full.bits_per_token(cross.test)) < sum(small.bits_per_token(cross.test)) - 0.05
    # the right contexts are found: time for codebook 0, the codebook before for the others
    assert full.codebooks[0].context == ("t1",)
    assert all("f1" in cb.context for cb in full.codebooks[1:])
    noisier = sources.cross_codebook_source(seed=0, eps=0.3)
    worse = fit_ngram(noisier.train, noisier.codebook_sizes, max_order=1)
    assert sum(worse.bits_per_token(noisier.test)) > sum(full.bits_per_token(cross.test)) + 1.0
    assert sum(worse.bits_per_token(noisier.test)) == pytest.approx(noisier.oracle_bits_per_frame, rel=0.05)


def _latents(items, codebook_sizes=None):
    return [Latent([Stream(x[None], FRAME_RATE, codebook_sizes, "s")], 16000) for x in items]


def test_the_bench_reports_every_estimator_the_curve_and_convergence(cross):
    sizes = cross.codebook_sizes
    result = measure_modelability(None, _latents(cross.train, sizes), _latents(cross.test, sizes), budget=STANDARD_BUDGET)
    row = result["streams"]["s"]
    assert set(row["estimators"]) == {"unigram", "bigram", "trigram", "transformer"}
    assert result["probe_bits_per_second"] == min(v["bits_per_second"] for v in row["estimators"].values())
    assert result["estimator"] == row["estimator"] in ("bigram", "trigram")
    assert result["probe_bits_per_second"] <= result["estimators"]["bigram"]
    assert result["predictable_bits_per_second"] == pytest.approx(result["unigram_bits_per_second"] - result["probe_bits_per_second"])
    # the unigram of the ratio is fitted on train, so it is above the test codes' own entropy
    assert row["unigram_bits_per_second"] >= row["test_entropy_bits_per_second"]
    assert len(row["probe_bits_per_second_per_codebook"]) == 4
    curve = row["data_efficiency"]
    assert [c["fraction"] for c in curve] == [0.125, 0.25, 0.5, 1.0]
    frames = [c["train_frames"] for c in curve]
    assert frames == sorted(frames) and frames[-1] == sum(x.shape[-1] for x in cross.train)
    assert curve[0]["bits_per_second"] > curve[-1]["bits_per_second"]  # less data, higher bound
    assert "transformer" not in curve[0]["estimators"]  # an n-gram won: the curve does not retrain it
    change = abs(curve[2]["bits_per_second"] - curve[3]["bits_per_second"]) / curve[3]["bits_per_second"]
    assert row["half_data_change"] == pytest.approx(change)
    assert row["converged"] == (change < 0.03) and result["converged"] == row["converged"]


def test_too_little_data_is_flagged_as_not_converged(cross):
    sizes = cross.codebook_sizes
    few = [x[:, :300] for x in cross.train[:6]]  # 1,800 frames: the bigram is far from its limit
    result = measure_modelability(None, _latents(few, sizes), _latents(cross.test, sizes),
                                  budget=STANDARD_BUDGET.__class__(**{**STANDARD_BUDGET.__dict__, "steps": 50}))
    assert result["converged"] is False and result["half_data_change"] > 0.03


@pytest.fixture(scope="module")
def ar_pair():
    src = sources.gaussian_ar(seed=0)
    scaled = src.rescaled([10.0, 0.1, 3.0, -2.0], [5.0, -1.0, 0.0, 100.0])
    kwargs = dict(steps=STANDARD_BUDGET.steps, dim=STANDARD_BUDGET.dim, layers=STANDARD_BUDGET.layers, heads=STANDARD_BUDGET.heads,
                  lr=STANDARD_BUDGET.lr, batch_frames=STANDARD_BUDGET.batch_frames, window_frames=STANDARD_BUDGET.window_frames,
                  patience=STANDARD_BUDGET.patience)
    reports = []
    for s in (src, scaled):
        probe = train_continuous_probe([torch.cat(s.train[:36], -1)], FRAME_RATE, latents_val=s.train[36:], **kwargs)
        reports.append(evaluate_continuous_probe(probe, s.test))
    return src, scaled, reports


def test_continuous_probe_recovers_the_true_predictive_information(ar_pair):
    src, _, (report, _) = ar_pair
    assert report["predictive_nats_per_frame"] == pytest.approx(src.predictive_nats_per_frame, rel=0.05)
    assert report["nll_per_frame"] == pytest.approx(src.conditional_nats_per_frame, abs=0.05 * src.predictive_nats_per_frame)
    assert report["marginal_nll_per_frame"] == pytest.approx(src.marginal_nats_per_frame, abs=0.05)
    assert report["r2"] == pytest.approx(src.r2, abs=0.02)
    assert report["predictive_nats_per_second"] == pytest.approx(FRAME_RATE * report["predictive_nats_per_frame"])


def test_continuous_figures_are_invariant_to_a_per_dimension_affine_map(ar_pair):
    src, scaled, (plain, rescaled) = ar_pair
    assert rescaled["predictive_nats_per_frame"] == pytest.approx(plain["predictive_nats_per_frame"], rel=0.01)
    assert rescaled["r2"] == pytest.approx(plain["r2"], rel=0.01)
    # the NLL itself is in the latent's units: it moves by exactly the log-Jacobian
    shift = float(np.log([10.0, 0.1, 3.0, 2.0]).sum())
    assert rescaled["nll_per_frame"] - plain["nll_per_frame"] == pytest.approx(shift, abs=0.01 * abs(shift) + 0.01)


def test_a_variable_rate_latent_costs_its_true_rate_per_second_of_audio():
    """Markov tokens (known oracle) with i.i.d. durations of 1-4 frames of 20 ms (2 bits each): the
    headline is (oracle token bits + 2) per segment x segments per second of audio, within 5 %."""
    src = sources.markov_source(seed=0)
    gen = torch.Generator().manual_seed(1)

    def latents(items):
        out = []
        for codes in items:
            n = codes.shape[-1]
            lengths = torch.randint(0, 4, (1, 1, n), generator=gen)
            seconds = (lengths[:, 0].float() + 1) * 0.02
            out.append(Latent([Stream(codes[None], FRAME_RATE, src.codebook_sizes, "codes", torch.tensor([n]), seconds),
                               Stream(lengths, FRAME_RATE, (4,), "durations", torch.tensor([n]), seconds)], 16000))
        return out

    test = latents(src.test)
    result = measure_modelability(None, latents(src.train), test, budget=STANDARD_BUDGET)
    segments = sum(lat.streams[0].values.shape[-1] for lat in test)
    seconds = sum(float(lat.streams[0].durations.sum()) for lat in test)
    rate = segments / seconds  # ~20 segments per second
    truth = (src.oracle_bits_per_frame + 2.0) * rate
    assert result["streams"]["codes"]["frame_rate"] == pytest.approx(rate)
    assert truth * 0.99 <= result["probe_bits_per_second"] <= truth * 1.05, (result["probe_bits_per_second"], truth)
