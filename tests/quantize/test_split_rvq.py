"""Split RVQ (Mimi): a semantic VQ beside an acoustic RVQ on the same input, codes semantic-first."""

import pytest
import torch

from audiolatent.core.errors import ConfigError
from audiolatent.quantize import SplitRVQ, build_bottleneck


def trained_split(dim: int = 8, n: int = 3, size: int = 16) -> tuple[SplitRVQ, torch.Tensor]:
    torch.manual_seed(0)
    q = build_bottleneck({"kind": "split-rvq", "dim": dim, "n_codebooks": n, "codebook_size": size})
    z = torch.randn(4, dim, 50)
    q.train()(z)  # k-means initialisation of every level from this batch
    return q.eval(), z


def test_both_parts_quantise_the_same_input_and_sum():
    q, z = trained_split()
    out = q(z)
    semantic, acoustic = q.semantic(z, 1), q.acoustic(z)  # the acoustic RVQ sees z, not z's residual
    assert torch.allclose(out.z_q, semantic.z_q + acoustic.z_q, atol=1e-6)
    assert torch.equal(out.streams[0][:, :1], semantic.streams[0])
    assert torch.equal(out.streams[0][:, 1:], acoustic.streams[0])
    assert torch.allclose(out.first_level, semantic.z_q)  # what the distillation shapes
    assert out.stats["usage"].shape == (3,) and out.stats["n_q"] == 3.0


def test_encode_decode_match_the_training_path_at_every_n_q():
    q, z = trained_split()
    for n_q in (1, 2, 3):
        codes = q.encode(z, n_q)[0]
        assert codes.shape == (4, n_q, 50) and codes.dtype == torch.long
        assert torch.equal(codes, q(z, n_q).streams[0])
        assert torch.allclose(q.decode([codes]), q(z, n_q).z_q, atol=1e-5)
    assert [s.codebook_sizes for s in q.stream_specs(2)] == [(16, 16)]
    # n_q = 1 is the semantic code alone: its decode ignores the acoustic quantisers
    assert torch.allclose(q.decode([q.encode(z, 1)[0]]), q.semantic.decode(q.semantic.encode(z, 1)), atol=1e-6)


def test_quantizer_dropout_drops_acoustic_levels_only():
    torch.manual_seed(0)
    q = SplitRVQ(8, n_codebooks=4, codebook_size=16, quantizer_dropout=1.0)
    z = torch.randn(2, 8, 20)
    seen = {q.train()(z).streams[0].shape[1] for _ in range(30)}
    assert seen <= {2, 3, 4} and len(seen) > 1  # the semantic level and at least one acoustic level, always


def test_bad_sizes_are_config_errors():
    with pytest.raises(ConfigError, match="n_codebooks must be >= 2"):
        SplitRVQ(8, n_codebooks=1)
    q, z = trained_split()
    with pytest.raises(ValueError, match=r"n_q must be in \[1, 3\]"):
        q.encode(z, 4)
