import itertools

import pytest
import torch

from audiolatent.core.errors import ConfigError
from audiolatent.quantize import LFQ


def test_codes_digits_round_trip_exhaustive():
    lfq = LFQ(8, codebook_size=32)
    codes = torch.arange(32)
    bits = lfq.codes_to_digits(codes)
    assert bits.shape == (32, 5) and set(bits.unique().tolist()) == {0, 1}
    assert torch.equal(lfq.digits_to_codes(bits), codes)
    grid = torch.tensor(list(itertools.product((0, 1), repeat=5)))
    assert sorted(lfq.digits_to_codes(grid).tolist()) == list(range(32))


def test_shapes_roundtrip_and_gradient():
    torch.manual_seed(0)
    lfq = LFQ(16, codebook_size=64)
    z = torch.randn(2, 16, 20, requires_grad=True)
    out = lfq(z)
    (codes,) = out.streams
    assert codes.shape == (2, 1, 20) and 0 <= codes.min() and codes.max() < 64
    assert set(out.losses) == {"commitment", "entropy"}
    (out.z_q.square().sum() + out.losses["entropy"] + out.losses["commitment"]).backward()
    assert z.grad.abs().sum() > 0
    lfq.eval()
    out = lfq(z)
    assert torch.equal(lfq.encode(z)[0], out.streams[0])
    assert torch.allclose(lfq.decode(lfq.encode(z)), out.z_q, atol=1e-5)


def _brute_force_entropy(h, temperature):
    """Softmax over all 2^n codes {-1, +1}^n of -||h - c||^2 / temperature."""
    n = h.shape[-1]
    codebook = torch.tensor(list(itertools.product((-1.0, 1.0), repeat=n)))
    logits = -torch.cdist(h, codebook).pow(2) / temperature
    p = logits.softmax(dim=-1)
    sample = -(p * p.clamp_min(1e-30).log()).sum(-1).mean()
    mean = p.mean(0)
    return sample, -(mean * mean.clamp_min(1e-30).log()).sum()


@pytest.mark.parametrize("group_bits", [4, 2])
def test_entropy_loss_matches_brute_force(group_bits):
    torch.manual_seed(0)
    lfq = LFQ(4, codebook_size=16, entropy_temperature=1.0, codebook_entropy_weight=0.0, entropy_group_bits=group_bits)
    h = torch.randn(50, 4) * 0.5
    sample, codebook = _brute_force_entropy(h, 1.0)
    assert torch.allclose(lfq.entropy_loss(h), sample, atol=1e-4)
    lfq.sample_entropy_weight, lfq.codebook_entropy_weight = 0.0, 1.0
    if group_bits == 4:  # exact
        assert torch.allclose(-lfq.entropy_loss(h), codebook, atol=1e-4)
    else:  # sum over groups bounds the joint entropy from above
        assert -lfq.entropy_loss(h) >= codebook - 1e-5


def test_codebook_size_must_be_power_of_two():
    with pytest.raises(ConfigError):
        LFQ(8, codebook_size=1000)
