import pytest
import torch

from audiolatent.quantize import ResidualVQ


def _trained(n_codebooks=4, **kwargs):
    torch.manual_seed(0)
    rvq = ResidualVQ(8, n_codebooks=n_codebooks, codebook_size=16, **kwargs)
    rvq.train()
    rvq(torch.randn(4, 8, 32))  # k-means init of every layer
    return rvq.eval()


def test_shapes_range_and_eval_roundtrip():
    rvq = _trained(codebook_dim=3)
    z = torch.randn(2, 8, 24)
    out = rvq(z)
    (codes,) = out.streams
    assert out.z_q.shape == z.shape
    assert codes.shape == (2, 4, 24) and codes.dtype == torch.long
    assert 0 <= codes.min() and codes.max() < 16
    assert torch.equal(rvq.encode(z)[0], codes)
    assert torch.allclose(rvq.decode(rvq.encode(z)), out.z_q, atol=1e-5)
    assert out.stats["usage"].shape == (4,) and out.stats["perplexity"].shape == (4,)
    assert rvq.stream_specs()[0].codebook_sizes == (16,) * 4
    assert rvq.stream_specs(n_q=2)[0].bits_per_frame == 8.0


def test_n_q_selectable_at_encode_forward_and_decode():
    rvq = _trained()
    z = torch.randn(2, 8, 24)
    full = rvq.encode(z)[0]
    errors = []
    for n_q in range(1, 5):
        codes = rvq.encode(z, n_q=n_q)[0]
        assert codes.shape == (2, n_q, 24)
        assert torch.equal(codes, full[:, :n_q])  # a prefix of the full codes
        assert rvq(z, n_q=n_q).streams[0].shape == (2, n_q, 24)
        errors.append(float((rvq.decode([codes]) - z).pow(2).mean()))
    assert errors == sorted(errors, reverse=True)  # each layer reduces the error
    with pytest.raises(ValueError):
        rvq.encode(z, n_q=5)
    with pytest.raises(ValueError):
        rvq.encode(z, n_q=0)


def test_quantizer_dropout_changes_n_q_in_training_only():
    torch.manual_seed(0)
    rvq = ResidualVQ(8, n_codebooks=6, codebook_size=8, quantizer_dropout=1.0, kmeans_init=False)
    rvq.train()
    z = torch.randn(2, 8, 10)
    seen = {rvq(z).streams[0].shape[1] for _ in range(30)}
    assert len(seen) >= 3 and seen <= set(range(1, 7))
    assert rvq(z, n_q=5).streams[0].shape[1] == 5  # explicit n_q is honoured
    rvq.eval()
    assert {rvq(z).streams[0].shape[1] for _ in range(5)} == {6}


def test_per_item_dropout_masks_layers_and_uses_all_parameters():
    torch.manual_seed(0)
    rvq = ResidualVQ(8, n_codebooks=4, codebook_size=8, codebook_dim=2, quantizer_dropout=1.0, dropout_per_item=True)
    rvq.train()
    z = torch.randn(6, 8, 10, requires_grad=True)
    out = rvq(z)
    assert out.streams[0].shape == (6, 4, 10)
    (out.z_q.square().sum() + out.losses["commitment"]).backward()
    assert z.grad.abs().sum() > 0
    assert all(p.grad is not None for p in rvq.parameters())


def test_straight_through_gradient():
    rvq = _trained()
    rvq.train()
    z = torch.randn(2, 8, 12, requires_grad=True)
    rvq(z).z_q.sum().backward()
    assert z.grad is not None and z.grad.abs().sum() > 0


def test_ema_off_gives_codebook_loss_summed_over_layers():
    torch.manual_seed(0)
    rvq = ResidualVQ(8, n_codebooks=3, codebook_size=8, ema=False, l2_normalize=True, codebook_dim=4)
    out = rvq(torch.randn(2, 8, 10))
    assert set(out.losses) == {"commitment", "codebook"}
    out.losses["codebook"].backward()
    assert all(layer.embed.grad is not None for layer in rvq.layers)


def test_large_tables_are_gathered_layer_by_layer_without_a_stacked_copy(monkeypatch):
    """Above STACK_MAX_BYTES the layers' tables are summed one by one (no second, stacked copy of
    them is kept), to the same values as the one stacked gather."""
    import audiolatent.quantize.rvq as rvq_module

    rvq = _trained(codebook_dim=3)
    (codes,) = rvq.encode(torch.randn(2, 8, 24))
    with torch.inference_mode():
        stacked = rvq.decode([codes])
        assert "stack" in rvq._cache._entries
        rvq._cache.clear()
        monkeypatch.setattr(rvq_module, "STACK_MAX_BYTES", 0)
        layered = rvq.decode([codes])
        assert "stack" not in rvq._cache._entries
    assert torch.allclose(layered, stacked, atol=1e-6)
    expected = sum(layer.decode_rows(codes[:, i].reshape(-1)) for i, layer in enumerate(rvq.layers))
    assert torch.allclose(layered.transpose(1, 2).reshape(-1, 8), expected, atol=1e-6)
