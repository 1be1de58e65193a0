"""Count-based n-gram estimators (lm/ngram.py): proper distributions, sensible choices, clear errors."""

from __future__ import annotations

import math

import numpy as np
import pytest

from audiolatent.lm.ngram import context_candidates, fit_ngram, fit_ngrams, fit_unigram, holdout_split


def _markov(rng, frames, size=8):
    x = np.zeros((2, frames), dtype=np.int64)
    for t in range(1, frames):
        x[0, t] = (x[0, t - 1] + rng.integers(1, 3)) % size  # next is +1 or +2: 1 bit
    x[1] = (x[0] + 3) % size  # codebook 1 is a function of codebook 0 of the same frame
    return x


@pytest.mark.parametrize("order", [1, 2])
def test_every_conditional_distribution_sums_to_one(order):
    rng = np.random.default_rng(0)
    train = [_markov(rng, 400) for _ in range(5)]
    model = fit_ngram(train, [8, 8], max_order=order)
    prefix = _markov(rng, 30)
    for k in range(2):
        total = 0.0
        for symbol in range(8):  # the same context, every possible last code of codebook k
            item = prefix.copy()
            item[k, -1] = symbol
            total += 2.0 ** model.codebooks[k].log2_probs([item], model.codebook_sizes)[-1]
        assert total == pytest.approx(1.0, abs=1e-9)


def test_finds_the_contexts_that_carry_the_information():
    rng = np.random.default_rng(1)
    train, test = [_markov(rng, 500) for _ in range(8)], [_markov(rng, 500) for _ in range(2)]
    model = fit_ngram(train, [8, 8], max_order=1)
    assert model.codebooks[0].context == ("t1",)
    assert "f1" in model.codebooks[1].context
    bits = model.bits_per_token(test)
    assert bits[0] == pytest.approx(1.0, abs=0.05)  # +1 or +2 with equal odds
    assert bits[1] < 0.05  # determined by codebook 0
    unigram = fit_unigram(train, [8, 8]).bits_per_token(test)
    assert unigram[0] == pytest.approx(3.0, abs=0.05)
    both = fit_ngrams(train, [8, 8], orders=(1, 2))
    assert sum(both[2].bits_per_token(test)) <= sum(both[1].bits_per_token(test)) + 0.02


def test_unseen_codes_keep_a_finite_cost():
    train = [np.zeros((1, 200), dtype=np.int64)]
    test = [np.array([[0, 0, 5, 0]])]
    bits = fit_ngram(train, [16], max_order=2).bits_per_token(test)[0]
    assert math.isfinite(bits) and bits > 0


def test_context_candidates():
    assert context_candidates(0, 1) == [(), ("t1",)]
    assert set(context_candidates(1, 1)) == {(), ("t1",), ("f1",), ("f1", "t1"), ("t1", "f1")}
    assert ("f1", "t1", "t2") in context_candidates(2, 2)
    assert context_candidates(3, 2, cross_codebook=False) == [(), ("t1",), ("t1", "t2")]


def test_holdout_split_holds_out_a_random_sample_of_items_and_keeps_every_frame():
    items = [np.arange(100)[None] + 1000 * i for i in range(40)]
    fit, val = holdout_split(items, 0.1)
    assert sum(x.shape[-1] for x in fit) + sum(x.shape[-1] for x in val) == 4000
    assert len(val) == 4 and sum(x.shape[-1] for x in val) == 400
    starts = sorted(int(x[0, 0]) // 1000 for x in val)
    assert starts != [36, 37, 38, 39]  # not the tail: a pooled corpus puts one corpus there
    assert {int(x[0, 0]) for x in fit}.isdisjoint(int(x[0, 0]) for x in val)
    assert holdout_split(items, 0.1)[1][0][0, 0] == val[0][0, 0]  # seeded
    one = [np.arange(1000)[None]]
    fit, val = holdout_split(one, 0.1)
    assert fit[0].shape[-1] == 900 and val[0][0, 0] == 900
    with pytest.raises(ValueError, match="validation slice"):
        holdout_split([np.arange(10)[None]], 0.1)


def test_bad_codes_are_a_clear_error():
    with pytest.raises(ValueError, match="out of range"):
        fit_unigram([np.array([[0, 9]])], [8])
    with pytest.raises(ValueError, match=r"\[K=2, T\]"):
        fit_unigram([np.zeros((3, 10), dtype=np.int64)], [8, 8])
    with pytest.raises(ValueError, match="non-empty"):
        fit_unigram([], [8])
