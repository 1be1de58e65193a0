import math

import pytest
import torch

from audiolatent.bench.rate import codebook_statistics, rate_metrics
from audiolatent.core.latent import Latent, Stream


def discrete(codes, sizes, frame_rate=50.0, name="codes", lengths=None):
    return Latent([Stream(codes, frame_rate, sizes, name, lengths)], 16000)


def test_nominal_rate_of_8_codebooks_of_1024_at_50_hz():
    codes = torch.randint(0, 1024, (1, 8, 100), generator=torch.Generator().manual_seed(0))
    result = rate_metrics([discrete(codes, (1024,) * 8)])
    assert result["nominal_bits_per_second"] == pytest.approx(4000.0)
    assert result["tokens_per_second"] == pytest.approx(400.0)
    assert result["streams"]["codes"]["frame_rate"] == 50.0


def test_uniform_random_codes_have_entropy_near_nominal():
    gen = torch.Generator().manual_seed(0)
    latents = [discrete(torch.randint(0, 1024, (2, 8, 25000), generator=gen), (1024,) * 8) for _ in range(2)]
    result = rate_metrics(latents)
    assert result["entropy_bits_per_second"] == pytest.approx(4000.0, rel=2e-3)
    stream = result["streams"]["codes"]
    assert stream["frames"] == 100000
    assert all(u == 1.0 for u in stream["usage"])
    assert all(p == pytest.approx(1024, rel=0.01) for p in stream["perplexity"])


def test_constant_codes_have_zero_entropy_and_minimal_usage():
    result = rate_metrics([discrete(torch.full((1, 2, 500), 7), (256, 16))])
    stream = result["streams"]["codes"]
    assert result["entropy_bits_per_second"] == 0.0
    assert stream["usage"] == [1 / 256, 1 / 16]
    assert stream["perplexity"] == [1.0, 1.0]
    assert result["nominal_bits_per_second"] == pytest.approx(50 * (8 + 4))


def test_two_equiprobable_codes_give_one_bit():
    codes = torch.tensor([[[0, 1] * 50]])
    stats = codebook_statistics(codes[0, 0], 4)
    assert stats["entropy_bits"] == pytest.approx(1.0) and stats["usage"] == 0.5


def test_padding_beyond_lengths_is_ignored():
    codes = torch.zeros(2, 1, 10, dtype=torch.long)
    codes[1, 0, 5:] = 3  # padding of item 1
    result = rate_metrics([discrete(codes, (4,), lengths=torch.tensor([10, 5]))])
    assert result["streams"]["codes"]["entropy_bits"] == [0.0]
    assert result["streams"]["codes"]["frames"] == 15


def test_multi_stream_and_continuous():
    coarse = Stream(torch.randint(0, 16, (1, 1, 12)), 12.0, (16,), "coarse")
    fine = Stream(torch.randint(0, 16, (1, 2, 48)), 48.0, (16, 16), "fine")
    cont = Stream(torch.randn(1, 32, 48), 48.0, None, "cont")
    result = rate_metrics([Latent([coarse, fine, cont], 16000)])
    assert result["nominal_bits_per_second"] == pytest.approx(12 * 4 + 48 * 8)
    assert result["streams"]["cont"] == {"kind": "continuous", "frame_rate": 48.0, "dims": 32, "values_per_second": 1536.0}
    assert result["values_per_second"] == pytest.approx(12 + 96 + 1536)


def test_variable_rate_stream_uses_effective_frame_rate():
    durations = torch.full((1, 10), 0.05)
    latent = Latent([Stream(torch.zeros(1, 1, 10, dtype=torch.long), 50.0, (2,), "v", None, durations)], 16000)
    assert rate_metrics([latent])["streams"]["v"]["frame_rate"] == pytest.approx(20.0)


def test_mismatched_latents_are_rejected():
    a = discrete(torch.zeros(1, 1, 5, dtype=torch.long), (4,))
    b = discrete(torch.zeros(1, 1, 5, dtype=torch.long), (8,))
    with pytest.raises(ValueError, match="disagree"):
        rate_metrics([a, b])
    assert not math.isnan(rate_metrics([a])["entropy_bits_per_second"])


def test_purely_continuous_latent_has_no_bits():
    latent = Latent([Stream(torch.randn(1, 16, 30), 50.0, None, "mel")], 16000)
    result = rate_metrics([latent])
    assert result["nominal_bits_per_second"] is None and result["entropy_bits_per_second"] is None
    assert result["values_per_second"] == 800.0


def _variable(durations_frames, sizes=(16,), frame_seconds=0.02, num_samples=None):
    d = torch.tensor([durations_frames], dtype=torch.float32) * frame_seconds
    n = len(durations_frames)
    codes = torch.zeros(1, len(sizes), n, dtype=torch.long)
    stream = Stream(codes, 1 / frame_seconds, sizes, "v", torch.tensor([n]), d)
    return Latent([stream], 16000, num_samples=None if num_samples is None else torch.tensor([num_samples]))


def test_token_spread_of_files_at_two_rates():
    """One second in 50 one-frame segments (50 tokens/s), one second in 10 five-frame ones (10)."""
    from audiolatent.bench.rate import token_spread

    spread = token_spread([_variable([1] * 50, num_samples=16000), _variable([5] * 10, num_samples=16000)])
    assert spread["mean"] == pytest.approx(30.0) and spread["std"] == pytest.approx(20.0)
    assert (spread["min"], spread["max"], spread["files"]) == (pytest.approx(10.0), pytest.approx(50.0), 2)
    fixed = token_spread([discrete(torch.zeros(1, 4, 50, dtype=torch.long), (256,) * 4)])
    assert fixed["std"] == 0.0 and fixed["mean"] == pytest.approx(200.0)


def test_rate_by_content_puts_tokens_where_the_energy_is():
    """Half a second of tone then half a second of digital silence: segments of one frame over the
    tone and of five over the silence give 50 and 10 tokens/s; a fixed rate gives 50 in both."""
    from audiolatent.bench.rate import rate_by_content, speech_frames

    t = torch.arange(16000) / 16000
    audio = torch.where(t < 0.5, 0.3 * torch.sin(2 * torch.pi * 200 * t), torch.zeros(()))[None]  # [1, N]
    assert speech_frames(audio, 16000).tolist() == [True] * 25 + [False] * 25
    latent = _variable([1] * 25 + [5] * 5, sizes=(16, 4), num_samples=16000)
    out = rate_by_content([latent], [audio])
    assert out["speech"]["seconds"] == pytest.approx(0.5) and out["silence"]["seconds"] == pytest.approx(0.5)
    assert out["speech"]["tokens_per_second"] == pytest.approx(2 * 50.0)  # two codebooks
    assert out["silence"]["tokens_per_second"] == pytest.approx(2 * 10.0)
    assert out["speech"]["nominal_bits_per_second"] == pytest.approx(50.0 * 6)
    fixed = Latent([Stream(torch.zeros(1, 1, 50, dtype=torch.long), 50.0, (16,), "codes", torch.tensor([50]))], 16000,
                   num_samples=torch.tensor([16000]))
    out = rate_by_content([fixed], [audio])
    assert out["speech"]["tokens_per_second"] == pytest.approx(50.0) == out["silence"]["tokens_per_second"]
    with pytest.raises(ValueError, match="2 audio"):
        rate_by_content([fixed], [audio, audio])
    assert out["detector"] == "energy"


def test_rate_by_content_follows_the_alignment_where_there_is_one():
    """With phones the pause phones are silence, whatever the energy says: the alignment that
    matches the tone/silence split gives the energy rule's figures; one that calls everything
    speech puts all the tokens in speech."""
    from audiolatent.bench.rate import rate_by_content

    t = torch.arange(16000) / 16000
    audio = torch.where(t < 0.5, 0.3 * torch.sin(2 * torch.pi * 200 * t), torch.zeros(()))[None]
    latent = _variable([1] * 25 + [5] * 5, sizes=(16, 4), num_samples=16000)
    out = rate_by_content([latent], [audio], [[("aa", 0.0, 0.5), ("pau", 0.5, 1.0)]])
    assert out["detector"] == "alignment"
    assert out["speech"]["tokens_per_second"] == pytest.approx(100.0) and out["silence"]["tokens_per_second"] == pytest.approx(20.0)
    spoken = rate_by_content([latent], [audio], [[("aa", 0.0, 1.0)]])
    assert spoken["silence"]["seconds"] == 0.0 and spoken["silence"]["tokens_per_second"] is None
    assert spoken["speech"]["tokens_per_second"] == pytest.approx(2 * 30.0)  # 30 segments in 1 s, two codebooks
    mixed = rate_by_content([latent, latent], [audio, audio], [None, [("aa", 0.0, 1.0)]])
    assert mixed["detector"] == "mixed"
    with pytest.raises(ValueError, match="alignments"):
        rate_by_content([latent], [audio], [None, None])
