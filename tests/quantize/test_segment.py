"""The causal segmenting bottleneck: known segmentations, the streaming contract, rate loss, codec use."""

from __future__ import annotations

import pytest
import torch

from audiolatent.core.config import PACKAGED_CONFIGS, load_yaml
from audiolatent.core.errors import ConfigError, StreamingError
from audiolatent.quantize import CausalSegmenter, build_bottleneck
from audiolatent.quantize.segment import rate_loss
from audiolatent.testing import random_chunk_sizes
from audiolatent.tokenizers.codec import build_codec

IDENTITY = {"kind": "identity"}
RVQ = {"kind": "rvq", "n_codebooks": 2, "codebook_size": 16, "kmeans_init": False}


def _pieces(lengths: list[int], dim: int = 8, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Piecewise-constant frames ``[1, dim, sum(lengths)]`` whose consecutive pieces point in
    opposite-signed directions (cosine -1 between neighbours), and the pieces' values ``[dim, P]``."""
    gen = torch.Generator().manual_seed(seed)
    base = torch.randn(dim, generator=gen)
    values = torch.stack([(1.0 + i % 3) * base * (-1) ** i for i in range(len(lengths))], dim=1)
    frames = torch.cat([values[:, i : i + 1].expand(dim, n) for i, n in enumerate(lengths)], dim=1)
    return frames[None], values


def _segmenter(quantizer: dict = IDENTITY, **kwargs) -> CausalSegmenter:
    torch.manual_seed(0)
    return build_bottleneck({"kind": "segment", "dim": 8, "quantizer": quantizer, **kwargs}).eval()


def test_similarity_rule_finds_the_pieces_and_splits_long_ones():
    """A piece starts where the direction flips; one longer than max_length is cut at max_length."""
    seg = _segmenter(boundary="similarity", max_length=4)
    z, values = _pieces([3, 1, 6, 2])
    tokens, durations = seg.encode(z)
    assert durations[0, 0].tolist() == [2, 0, 3, 1, 1]  # frames - 1: 3, 1, 4 + 2 (cut), 2
    expected = values[:, [0, 1, 2, 2, 3]]
    torch.testing.assert_close(tokens[0], expected)
    _, counts = seg.encode_segments(z)
    assert counts.tolist() == [5]


def test_given_boundaries_replace_the_router_and_long_segments_are_still_cut():
    """Offline ``starts`` (a phone alignment's onsets) set the segments: the frames' own changes are
    ignored, the first frame always starts one and a segment past max_length is split."""
    seg = _segmenter(boundary="similarity", max_length=4)
    z, _ = _pieces([3, 1, 6, 2])  # the router would cut at 0, 3, 4, 8, 10
    starts = torch.zeros(1, 12, dtype=torch.bool)
    starts[0, [2, 7]] = True  # frame 0 not marked: it starts one anyway
    tokens, durations = seg.encode_segments(z, starts=starts)[0]
    assert durations[0, 0].tolist() == [1, 3, 0, 3, 0]  # frames - 1: 2, 4 + 1 (cut at 4), 4 + 1 (cut)
    expected = torch.stack([z[0, :, a:b].mean(1) for a, b in [(0, 2), (2, 6), (6, 7), (7, 11), (11, 12)]], 1)
    assert torch.allclose(tokens[0], expected)
    with pytest.raises(ValueError, match="do not match"):
        seg.encode_segments(z, starts=starts[:, :5])
    with seg.streaming(1), pytest.raises(StreamingError, match="offline"):
        seg.encode_segments(z, starts=starts)


def test_decode_expands_tokens_over_their_durations():
    seg = _segmenter(boundary="similarity", max_length=4)
    z, values = _pieces([3, 1, 6, 2])
    out = seg.decode(seg.encode(z))
    assert out.shape == z.shape
    extra = out - z  # what is left is the position and length embeddings
    length = torch.tensor([3, 3, 3, 1, 4, 4, 4, 4, 2, 2, 2, 2]) - 1
    position = torch.tensor([0, 1, 2, 0, 0, 1, 2, 3, 0, 1, 0, 1])
    expected = seg.position_embedding.weight[position] + seg.length_embedding.weight[length]
    torch.testing.assert_close(extra[0].T, expected, atol=1e-5, rtol=0)


def test_forward_equals_decode_of_encode_in_eval():
    seg = _segmenter(RVQ)
    z = torch.randn(3, 8, 40)
    out = seg(z)
    assert out.z_q.shape == z.shape
    streams, counts = seg.encode_segments(z)
    torch.testing.assert_close(out.z_q, seg.decode(streams, counts), atol=1e-6, rtol=0)
    assert 1.0 < out.stats["frames_per_segment"] <= seg.max_length
    assert "rate" in out.losses


def test_no_segment_is_longer_than_max_length():
    seg = _segmenter(boundary="similarity", max_length=3)
    z = torch.randn(1, 8, 1).expand(2, 8, 50).contiguous()  # one constant direction: only forced cuts
    *_, durations = seg.encode(z)
    assert durations.max() == 2 and (durations[0, 0] == 2).sum() == 16  # 16 full segments + one of 2 frames
    assert seg.decode(seg.encode(z)).shape == (2, 8, 50)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_chunked_streaming_then_flush_equals_offline(seed):
    seg = _segmenter(RVQ, max_length=5)
    gen = torch.Generator().manual_seed(seed)
    z = torch.randn(2, 8, 61, generator=gen)
    z[:, :, 10:30] = z[:, :, 10:11]  # a run of similar frames, cut by max_length
    offline, counts = seg.encode_segments(z)
    sizes = random_chunk_sizes(61, 1, gen, max_units=7)
    parts, parts_counts, start = [], [], 0
    with seg.streaming(2):
        for size in sizes:
            streams, n = seg.encode_segments(z[..., start : start + size])
            parts.append(streams)
            parts_counts.append(n)
            start += size
        streams, n = seg.flush()
        parts.append(streams)
        parts_counts.append(n)
        with pytest.raises(StreamingError, match="already called"):
            seg.flush()
    for b in range(2):
        for i in range(len(offline)):
            got = torch.cat([p[i][b, :, : int(c[b])] for p, c in zip(parts, parts_counts)], dim=-1)
            assert torch.equal(got, offline[i][b, :, : int(counts[b])]), (b, i, sizes)


def test_a_full_segment_is_emitted_without_waiting():
    """Latency bound: a segment that reaches max_length frames comes out in the chunk that fills it."""
    seg = _segmenter(boundary="similarity", max_length=4)
    z = torch.randn(1, 8, 1).expand(1, 8, 4).contiguous()
    with seg.streaming(1):
        _, n = seg.encode_segments(z[..., :3])
        assert n.tolist() == [0]
        _, n = seg.encode_segments(z[..., 3:])
        assert n.tolist() == [1]


def test_rate_loss_known_values():
    p = torch.full((1, 10), 0.25)
    starts = torch.zeros(1, 10, dtype=torch.bool)
    starts[0, ::4] = True  # F = 0.3, G = 0.25
    torch.testing.assert_close(rate_loss(torch.ones(1, 4, dtype=torch.bool), torch.ones(1, 4), 4.0), torch.tensor(4.0))
    exact = torch.zeros(1, 8, dtype=torch.bool)
    exact[0, ::4] = True
    torch.testing.assert_close(rate_loss(exact, torch.full((1, 8), 0.25), 4.0), torch.tensor(1.0))
    expected = 4 / 3 * (3 * 0.3 * 0.25 + 0.7 * 0.75)
    torch.testing.assert_close(rate_loss(starts, p, 4.0), torch.tensor(expected))


@pytest.mark.parametrize("walk", [False, True], ids=["noise", "random-walk"])
def test_rate_loss_moves_the_learned_boundaries_to_the_target(walk):
    """Trained on the rate loss alone from the uncalibrated router (theta 0.5, tau 0.1), it moves
    to about the target of four frames per segment from either side: from ~2 on noise around a
    faint common offset (neighbours nearly unrelated; the router can learn to look at the offset)
    and from 8 on a random walk (neighbours alike: only max_length cuts)."""
    seg = _segmenter(RVQ, max_length=8, target_ratio=4.0).train()
    seg.calibrated.fill_(True)  # the rate loss alone, not the calibration, moves it here
    router = [seg.query.weight, seg.query.bias, seg.key.weight, seg.key.bias, seg.theta, seg.log_temperature]
    opt = torch.optim.Adam(router, lr=0.02)
    gen = torch.Generator().manual_seed(0)
    z = torch.randn(8, 8, 64, generator=gen) + 0.3
    if walk:
        z = z.cumsum(-1) * 0.3 + torch.randn(8, 8, 1, generator=gen)
    before = seg(z).stats["frames_per_segment"]
    for _ in range(150):
        loss = seg(z).losses["rate"]
        opt.zero_grad()
        loss.backward()
        opt.step()
    after = seg(z).stats["frames_per_segment"]
    assert (before > 6.0) if walk else (before < 3.0), before
    assert 3.3 < after < 4.8, (before, after)


def _pause_and_speech(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Frames ``[4, 8, 96]`` around a large common offset (an encoder's), alternating 24-frame
    *pauses* (one frame held, faint noise) and 24-frame *speech* stretches (a new frame every
    frame), and the speech mask ``[4, 96]``."""
    gen = torch.Generator().manual_seed(seed)
    offset = 4.0 * torch.randn(8, 1, generator=gen)
    speech = (torch.arange(96) // 24) % 2 == 1
    held = torch.randn(4, 8, 1, generator=gen).expand(4, 8, 96)
    moving = torch.randn(4, 8, 96, generator=gen)
    frames = offset + torch.where(speech, moving, held + 0.02 * torch.randn(4, 8, 96, generator=gen))
    return frames, speech.expand(4, 96)


def test_calibration_starts_the_router_at_the_target_rate_and_cuts_where_frames_change():
    """Known answer: on pauses and speech around a common offset, the first training batch sets
    the boundary rate to the target (one start in 3 frames) and puts the starts in the speech;
    the uncalibrated router, which compares the raw frames, cuts at max_length only (the offset
    makes every neighbour alike), the pauses as often as the speech."""
    frames, speech = _pause_and_speech()
    seg = _segmenter(RVQ, max_length=8, target_ratio=3.0)
    raw_p, raw_starts, _ = seg._offline(frames.transpose(1, 2))
    assert not bool(seg.calibrated) and raw_p[:, 1:].max() < 0.5  # eval: no calibration; only max_length cuts
    seg.train()
    out = seg(frames)
    assert bool(seg.calibrated)
    centred = seg.query(frames.transpose(1, 2)).mean((0, 1))
    torch.testing.assert_close(centred, torch.zeros(8), atol=1e-4, rtol=0)  # the common offset taken out
    assert 2.3 < out.stats["frames_per_segment"] < 3.4, out.stats  # 3, less the max_length cuts of the pauses
    _, starts, _ = seg._offline(frames.transpose(1, 2))
    starts = starts[:, 1:]
    in_speech, in_pause = starts[speech[:, 1:]].float().mean(), starts[~speech[:, 1:]].float().mean()
    assert in_speech > 0.55 and in_pause < 0.2, (in_speech, in_pause)  # 1/3 of all frames start a segment
    theta = float(seg.theta.detach())
    seg(frames + 1.0)  # calibrated once: a later batch changes nothing
    assert float(seg.theta.detach()) == theta
    reloaded = _segmenter(RVQ, max_length=8, target_ratio=3.0)
    reloaded.load_state_dict(seg.state_dict())
    assert bool(reloaded.calibrated)


def test_bad_configs_are_clear_errors():
    with pytest.raises(ConfigError, match="max_length"):
        build_bottleneck({"kind": "segment", "dim": 8, "max_length": 1})
    with pytest.raises(ConfigError, match="boundary"):
        build_bottleneck({"kind": "segment", "dim": 8, "boundary": "magic"})
    with pytest.raises(ConfigError, match="frame-wise"):
        build_bottleneck({"kind": "segment", "dim": 8, "quantizer": {"kind": "msrvq", "strides": [2, 1]}})
    with pytest.raises(ConfigError, match="target_ratio"):
        build_bottleneck({"kind": "segment", "dim": 8, "target_ratio": 9.0})


# --- inside a codec ---------------------------------------------------------------------------------


def _codec():
    data = load_yaml(PACKAGED_CONFIGS / "codecs" / "tiny-16k.yaml")
    data["bottleneck"] = {"kind": "segment", "max_length": 4, "quantizer": RVQ}
    torch.manual_seed(0)
    return build_codec(data).eval()


def test_codec_latent_carries_durations_and_declares_the_held_segment():
    codec = _codec()
    hop = codec.encoder_hop
    x = 0.1 * torch.randn(2, 1, 40 * hop)
    latent = codec.encode(x, lengths=torch.tensor([40 * hop, 25 * hop]))
    codes, durations = latent.streams
    assert durations.name == "durations" and durations.codebook_sizes == (4,)
    seconds = codes.durations  # [B, K] seconds per segment
    for b, frames in enumerate([40, 25]):
        n = int(codes.lengths[b])
        total = round(float(seconds[b, :n].sum()) * codec.sample_rate / hop)
        assert total >= frames and total - frames < 4  # the segments cover the item (the last may run into padding)
    assert codes.lengths[1] < codes.lengths[0]
    assert codec.lookahead == codec.encoder.lookahead + codec.decoder.lookahead + 3 * hop
    audio = codec.decode(latent)
    assert audio.shape == x.shape


def test_codec_streams_like_offline():
    codec = _codec()
    hop = codec.encoder_hop
    gen = torch.Generator().manual_seed(4)
    x = 0.1 * torch.randn(1, 1, 37 * hop, generator=gen)
    offline_latent = codec.encode(x)
    offline_audio = codec.decode(offline_latent)
    sizes = random_chunk_sizes(x.shape[-1], hop, gen, max_units=6)
    codes, audio, start = [], [], 0
    with torch.no_grad(), codec.streaming(1):
        for size in sizes:
            latent = codec.encode(x[..., start : start + size])
            codes.append(latent.streams[0].values)
            audio.append(codec.decode(latent))
            start += size
        last = codec.flush_encode()
        codes.append(last.streams[0].values)
        audio.append(codec.decode(last))
    assert torch.equal(torch.cat(codes, dim=-1), offline_latent.streams[0].values)
    streamed = torch.cat(audio, dim=-1)
    assert streamed.shape == offline_audio.shape
    torch.testing.assert_close(streamed, offline_audio, atol=1e-5, rtol=0)


def test_rate_counts_segments_per_second_and_the_durations_bits():
    from audiolatent.bench.rate import rate_metrics

    codec = _codec()
    hop = codec.encoder_hop
    x = 0.1 * torch.randn(1, 1, 50 * hop, generator=torch.Generator().manual_seed(1))
    latent = codec.encode(x)
    k = int(latent.streams[0].lengths[0])
    seconds = 50 * hop / codec.sample_rate
    rate = rate_metrics([latent])
    assert rate["streams"]["codes"]["frame_rate"] == pytest.approx(k / seconds)
    assert rate["streams"]["durations"]["frame_rate"] == pytest.approx(k / seconds)
    # 2 x 16-code RVQ (8 bits) + a 4-way duration (2 bits) per segment
    assert rate["nominal_bits_per_second"] == pytest.approx(k / seconds * 10)
    lengths = latent.streams[1].values[0, 0] + 1
    p = torch.bincount(lengths, minlength=5)[1:].double() / k
    entropy = float(-(p[p > 0] * p[p > 0].log2()).sum())
    assert rate["streams"]["durations"]["entropy_bits_per_second"] == pytest.approx(k / seconds * entropy)


def test_the_bench_probes_a_lookahead_within_the_declared_bound():
    """The round trip's measured lookahead (a continuous inner quantiser, so every input change
    shows) stays within max_length - 1 frames, and the codec says it is not causal but streams."""
    from audiolatent.bench.streaming import measure_streaming

    data = load_yaml(PACKAGED_CONFIGS / "codecs" / "tiny-16k.yaml")
    data["bottleneck"] = {"kind": "segment", "max_length": 4, "quantizer": IDENTITY}
    torch.manual_seed(0)
    codec = build_codec(data).eval()
    assert not codec.causal and codec.streamable
    result = measure_streaming(codec)
    assert result["declared_lookahead_samples"] == 3 * codec.encoder_hop
    assert 2 * codec.encoder_hop < result["probed_lookahead_samples"] <= result["declared_lookahead_samples"]
    assert result["consistent"]


def test_long_audio_is_chunked_like_one_pass():
    from audiolatent.tokenizers.long import decode_long, encode_long

    codec = _codec()
    x = 0.1 * torch.randn(1, 1, 3 * codec.sample_rate + 123, generator=torch.Generator().manual_seed(5))
    whole = codec.encode(x)
    chunked = encode_long(codec, x, chunk_seconds=0.7)
    for a, b in zip(whole.streams, chunked.streams):
        assert torch.equal(a.values[..., : int(a.lengths[0])], b.values[..., : int(b.lengths[0])])
        assert torch.equal(a.lengths, b.lengths) and torch.allclose(a.durations, b.durations)
    audio = codec.decode(whole)
    long_audio = decode_long(codec, chunked, chunk_seconds=0.5)
    assert long_audio.shape == audio.shape
    torch.testing.assert_close(long_audio, audio, atol=1e-5, rtol=0)


def test_latent_bits_per_second_counts_segments_per_second():
    codec = _codec()
    latent = codec.encode(0.1 * torch.randn(1, 1, 16000, generator=torch.Generator().manual_seed(2)))
    k = int(latent.streams[0].lengths[0])  # segments in one second
    assert latent.streams[0].effective_frame_rate == pytest.approx(k)
    assert latent.bits_per_second == pytest.approx(k * (8 + 2))
