import pytest
import torch

from audiolatent.quantize import VectorQuantizer


def _toy_batch(n_clusters=16, dim=4, batch=8, frames=32, seed=0):
    """[B, D, T] frames drawn around ``n_clusters`` well-separated centres."""
    gen = torch.Generator().manual_seed(seed)
    centres = torch.randn(n_clusters, dim, generator=gen) * 4
    pick = torch.randint(0, n_clusters, (batch, frames), generator=gen)
    x = centres[pick] + 0.05 * torch.randn(batch, frames, dim, generator=gen)
    return x.transpose(1, 2).contiguous()


VARIANTS = [
    {},
    {"codebook_dim": 3},
    {"l2_normalize": True},
    {"ema": False},
    {"codebook_dim": 3, "l2_normalize": True, "ema": False},  # DAC-style factorised cosine codes
]


@pytest.mark.parametrize("kwargs", VARIANTS)
def test_shapes_range_and_eval_roundtrip(kwargs):
    torch.manual_seed(0)
    vq = VectorQuantizer(8, codebook_size=32, **kwargs)
    z = torch.randn(3, 8, 20)
    vq.train()
    vq(z)  # k-means init
    vq.eval()
    out = vq(z)
    assert out.z_q.shape == z.shape
    (codes,) = out.streams
    assert codes.shape == (3, 1, 20) and codes.dtype == torch.long
    assert 0 <= codes.min() and codes.max() < 32
    assert torch.equal(vq.encode(z)[0], codes)
    assert torch.allclose(vq.decode(vq.encode(z)), out.z_q, atol=1e-6)
    assert out.stats["usage"].shape == (1,) and out.stats["perplexity"].shape == (1,)
    assert vq.stream_specs()[0].codebook_sizes == (32,)


@pytest.mark.parametrize("ema", [True, False])
def test_straight_through_gradient_and_losses(ema):
    torch.manual_seed(0)
    vq = VectorQuantizer(8, codebook_size=16, codebook_dim=4, ema=ema)
    z = torch.randn(2, 8, 10, requires_grad=True)
    out = vq(z)
    assert set(out.losses) == ({"commitment"} if ema else {"commitment", "codebook"})
    (out.z_q.square().sum() + sum(out.losses.values())).backward()
    assert z.grad is not None and z.grad.abs().sum() > 0
    if not ema:
        assert vq.embed.grad is not None and vq.embed.grad.abs().sum() > 0


def test_kmeans_init_uses_the_data():
    torch.manual_seed(0)
    vq = VectorQuantizer(4, codebook_size=16, dead_code_threshold=0)
    z = _toy_batch()
    vq.train()
    vq(z)  # first batch: k-means
    assert bool(vq.initialized)
    vq.eval()
    out = vq(z)
    assert out.losses["commitment"] < 0.05
    assert out.stats["usage"].item() > 0.9


def test_dead_code_replacement_revives_far_away_codebook():
    z = _toy_batch(n_clusters=16)

    def run(threshold):
        torch.manual_seed(0)
        vq = VectorQuantizer(4, codebook_size=16, kmeans_init=False, dead_code_threshold=threshold, decay=0.9)
        with torch.no_grad():
            vq.embed.add_(100.0)  # every code far from the data: one code takes everything
            vq.embed_sum.copy_(vq.embed)
        vq.train()
        for _ in range(30):
            vq(z)
        vq.eval()
        return vq(z).stats["usage"].item()

    assert run(0.0) <= 2 / 16  # without replacement the codebook stays collapsed
    assert run(2.0) > 0.8


def test_deferred_update_waits_for_sync_and_pools_micro_batches():
    torch.manual_seed(0)
    vq = VectorQuantizer(4, codebook_size=8, kmeans_init=False, dead_code_threshold=0, deferred_update=True)
    before = vq.embed.clone()
    vq.train()
    vq(_toy_batch(seed=1))
    vq(_toy_batch(seed=2))
    assert torch.equal(vq.embed, before)
    assert vq._step_frames.item() == 2 * 8 * 32
    vq.sync_distributed()  # no process group: applies the pooled update
    assert not torch.equal(vq.embed, before)
    assert vq._step_frames.item() == 0


def test_eval_does_not_update_and_cache_follows_load_state_dict():
    torch.manual_seed(0)
    vq = VectorQuantizer(4, codebook_size=8, codebook_dim=2).eval()
    z = torch.randn(1, 4, 12)
    with torch.no_grad():
        first = vq.decode(vq.encode(z))
        state = {k: v + 1.0 if v.is_floating_point() else v for k, v in vq.state_dict().items()}
        vq.load_state_dict(state)
        second = vq.decode(vq.encode(z))
    assert not torch.allclose(first, second)
    assert vq._step_frames.item() == 0


def test_bad_config():
    from audiolatent.core.errors import ConfigError

    with pytest.raises(ConfigError):
        VectorQuantizer(8, codebook_size=1)
    with pytest.raises(ConfigError):
        VectorQuantizer(8, decay=1.5)
