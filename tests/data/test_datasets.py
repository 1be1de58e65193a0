"""AudioDataset, collate_audio and from_path (audiolatent/data/datasets.py)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from audiolatent.data import (AudioDataset, CropAugmentation, DataError, ManifestEntry, collate_audio, from_path,
                              scan_folder, split_of)

RATE = 16000


def _noise(path: Path, n: int, rate: int = RATE, channels: int = 1, seed: int = 0) -> np.ndarray:
    """Write distinct float samples (exact in FLOAT wav) so a crop's position can be checked."""
    x = np.random.default_rng(seed).uniform(-0.5, 0.5, (n, channels)).astype(np.float32)
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), x, rate, subtype="FLOAT")
    return x


@pytest.fixture
def folder(tmp_path):
    """Five files: various lengths, one stereo, one at 8 kHz in a subfolder, plus non-audio."""
    root = tmp_path / "corpus"
    signals = {
        "long.wav": _noise(root / "long.wav", 3 * RATE, seed=1),
        "short.wav": _noise(root / "short.wav", RATE // 4, seed=2),
        "stereo.wav": _noise(root / "stereo.wav", RATE, channels=2, seed=3),
        "sub/mid.wav": _noise(root / "sub" / "mid.wav", RATE, seed=4),
        "sub/low.wav": _noise(root / "sub" / "low.wav", 8000, rate=8000, seed=5),
    }
    (root / "notes.txt").write_text("not audio")
    _noise(root / ".tmp.wav", 100)  # a half-written file of an atomic writer: ignored
    return root, signals


def test_scan_folder(folder):
    root, _ = folder
    entries = scan_folder(root)
    assert [e.id for e in entries] == ["long", "short", "stereo", "sub/low", "sub/mid"]
    long = entries[0]
    assert (long.duration, long.sample_rate, long.split) == (3.0, RATE, split_of("long"))
    assert entries[3].sample_rate == 8000


def test_whole_files_mono_and_resampled(folder):
    root, signals = folder
    ds = from_path(root)
    assert len(ds) == 5
    item = ds[0]
    assert item["audio"].shape == (1, 3 * RATE) and item["length"] == 3 * RATE and item["offset"] == 0
    np.testing.assert_array_equal(item["audio"][0].numpy(), signals["long.wav"][:, 0])
    assert ds[2]["audio"].shape == (1, RATE)  # stereo averaged to mono
    assert AudioDataset(root, mono=False)[2]["audio"].shape == (2, RATE)

    ds8 = AudioDataset(root, sample_rate=8000)
    lengths = {ds8.entries[i].id: ds8[i]["audio"].shape[-1] for i in range(len(ds8))}
    assert lengths == {"long": 24000, "short": 2000, "stereo": 8000, "sub/low": 8000, "sub/mid": 8000}
    assert all(ds8[i]["sample_rate"] == 8000 for i in range(len(ds8)))
    up = AudioDataset(root, sample_rate=24000)[3]  # 1 s at 8 kHz -> 24 kHz
    assert up["audio"].shape == (1, 24000) and up["sample_rate"] == 24000


def test_crops_are_seeded_by_seed_epoch_index(folder):
    root, signals = folder
    kw = dict(crop_seconds=0.5, sample_rate=RATE)
    ds = AudioDataset(root, seed=7, **kw)
    crop = RATE // 2
    item = ds[0]
    assert item["audio"].shape == (1, crop) and item["length"] == crop
    start = item["offset"]
    np.testing.assert_array_equal(item["audio"][0].numpy(), signals["long.wav"][start : start + crop, 0])

    offsets = lambda d: [d[i]["offset"] for i in range(len(d))]  # noqa: E731
    first = offsets(ds)
    assert offsets(AudioDataset(root, seed=7, **kw)) == first  # same seed, epoch 0
    assert [ds[i]["offset"] for i in reversed(range(len(ds)))] == first[::-1]  # order does not matter
    epoch_offsets = []
    for epoch in range(4):
        ds.set_epoch(epoch)
        epoch_offsets.append(ds[0]["offset"])
    assert epoch_offsets[0] == first[0] and len(set(epoch_offsets)) > 1
    seed_offsets = {AudioDataset(root, seed=s, **kw)[0]["offset"] for s in range(4)}
    assert len(seed_offsets) > 1

    # The cached and resampling paths draw the same windows.
    cached = AudioDataset(root, seed=7, cache=True, **kw)
    assert offsets(cached) == first and len(cached._cache) == len(cached)
    torch.testing.assert_close(cached[0]["audio"], AudioDataset(root, seed=7, **kw)[0]["audio"], rtol=0, atol=0)


def test_short_file_is_zero_padded(folder):
    root, signals = folder
    ds = AudioDataset(root, crop_seconds=1.0)
    item = ds[1]  # short.wav: 0.25 s
    assert item["audio"].shape == (1, RATE) and item["length"] == RATE // 4 and item["offset"] == 0
    np.testing.assert_array_equal(item["audio"][0, : RATE // 4].numpy(), signals["short.wav"][:, 0])
    assert item["audio"][0, RATE // 4 :].abs().max() == 0
    low = ds[3]  # 8 kHz file, no resampling asked: crop length follows the file's rate
    assert low["audio"].shape == (1, 8000) and low["sample_rate"] == 8000


def test_collate_pads_and_reports_lengths(folder):
    root, _ = folder
    ds = AudioDataset(root, sample_rate=RATE)
    batch = collate_audio([ds[0], ds[1], ds[4]])
    assert batch["audio"].shape == (3, 1, 3 * RATE)
    assert batch["lengths"].tolist() == [3 * RATE, RATE // 4, RATE] and batch["lengths"].dtype == torch.long
    assert batch["audio"][1, :, RATE // 4 :].abs().max() == 0
    assert batch["sample_rate"] == RATE and [e.id for e in batch["entries"]] == ["long", "short", "sub/mid"]

    loader = torch.utils.data.DataLoader(AudioDataset(root, sample_rate=RATE, crop_seconds=0.5), batch_size=2,
                                         collate_fn=collate_audio)
    shapes = [b["audio"].shape for b in loader]
    assert shapes == [(2, 1, RATE // 2), (2, 1, RATE // 2), (1, 1, RATE // 2)]

    with pytest.raises(DataError, match="different sample rates"):
        collate_audio([ds[0], AudioDataset(root)[3]])
    with pytest.raises(DataError, match="different channel counts"):
        stereo = AudioDataset(root, mono=False)
        collate_audio([stereo[0], stereo[2]])
    with pytest.raises(DataError, match="empty batch"):
        collate_audio([])


def test_filters(folder):
    root, _ = folder
    assert [e.id for e in AudioDataset(root, min_seconds=1.0).entries] == ["long", "stereo", "sub/low", "sub/mid"]
    assert [e.id for e in AudioDataset(root, max_files=2).entries] == ["long", "short"]
    by_split = {s: [e.id for e in AudioDataset(scan_folder(root)).entries if e.split == s] for s in ("train", "test")}
    for split, ids in by_split.items():
        if ids:
            assert [e.id for e in AudioDataset(root, split=split).entries] == ids
        else:
            with pytest.raises(DataError, match=f"no entries in split '{split}'"):
                AudioDataset(root, split=split)


def test_manifest_and_entries_sources(folder, tmp_path):
    root, _ = folder
    manifest = tmp_path / "m.jsonl"
    manifest.write_text("\n".join(json.dumps({"path": f"corpus/{n}", "split": s}) for n, s in
                                  [("long.wav", "train"), ("short.wav", "test"), ("sub/mid.wav", "train")]))
    ds = from_path(manifest, split="train")
    assert [e.id for e in ds.entries] == ["corpus/long", "corpus/sub/mid"]
    assert ds.total_seconds == pytest.approx(4.0)
    single = from_path(root / "sub" / "mid.wav")
    assert len(single) == 1 and single[0]["audio"].shape == (1, RATE)
    entries = [ManifestEntry(path=root / "long.wav", duration=3.0, sample_rate=RATE, split="train", id="x")]
    assert AudioDataset(entries)[0]["length"] == 3 * RATE


def test_errors(folder, tmp_path):
    root, _ = folder
    with pytest.raises(DataError, match="no such manifest, folder or audio file"):
        from_path(tmp_path / "missing")
    with pytest.raises(DataError, match="not a manifest"):
        from_path(root / "notes.txt")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no audio files"):
        from_path(tmp_path / "empty")
    for bad in (dict(crop_seconds=0), dict(seed=-1), dict(max_files=0), dict(sample_rate=0)):
        with pytest.raises(DataError):
            AudioDataset(root, **bad)
    with pytest.raises(IndexError):
        AudioDataset(root)[5]


def _peak_hz(x: np.ndarray, rate: int = RATE) -> float:
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.argmax(spectrum) * rate / len(x))


def test_speed_and_gain_augmentation(tmp_path):
    t = np.arange(3 * RATE) / RATE
    sf.write(str(tmp_path / "sine.wav"), (0.25 * np.sin(2 * np.pi * 1000 * t)).astype(np.float32), RATE, subtype="FLOAT")
    kw = dict(crop_seconds=1.0, sample_rate=RATE, seed=3)
    plain = AudioDataset(tmp_path, **kw)[0]["audio"][0].numpy()
    assert abs(_peak_hz(plain) - 1000) <= 1
    for factor in (0.9, 1.1):
        item = AudioDataset(tmp_path, speed=(factor, factor), **kw)[0]
        assert item["audio"].shape == (1, RATE) and item["length"] == RATE
        assert abs(_peak_hz(item["audio"][0].numpy()) - 1000 * factor) <= 2  # pitch moves with the speed
    louder = AudioDataset(tmp_path, gain_db=(6.0, 6.0), **kw)[0]["audio"][0].numpy()
    np.testing.assert_allclose(louder, plain * 10 ** (6 / 20), rtol=1e-6)

    # Drawn from (seed, epoch, index): reproducible, different per epoch, same with and without the cache.
    ranged = dict(speed=(0.9, 1.1), gain_db=(-6.0, 6.0), **kw)
    a, b = AudioDataset(tmp_path, **ranged), AudioDataset(tmp_path, cache=True, **ranged)
    torch.testing.assert_close(a[0]["audio"], b[0]["audio"], rtol=0, atol=0)
    draws = set()
    for epoch in range(4):
        a.set_epoch(epoch)
        draws.add(a._augmentation(0))
    assert len(draws) == 4 and all(0.9 <= f <= 1.1 and 0.5 <= g <= 2.0 for f, g in draws)

    # A file shorter than the window a slow crop needs is padded, its length reported.
    sf.write(str(tmp_path / "sine.wav"), np.full(RATE // 2, 0.1, np.float32), RATE, subtype="FLOAT")
    short = AudioDataset(tmp_path, speed=(0.9, 0.9), **kw)[0]
    assert short["audio"].shape == (1, RATE) and abs(short["length"] - RATE // 2 / 0.9) <= 2


@pytest.mark.parametrize("kwargs, message", [
    (dict(speed=(0.0, 1.1)), "speed must satisfy 0 < low"),
    (dict(speed=(1.1, 0.9)), "speed must satisfy"),
    (dict(gain_db=(3.0, -3.0)), "gain_db must satisfy"),
    (dict(gain_db="loud"), "gain_db must be a"),
    (dict(speed=(True, 1.1)), "speed must be a"),
    (dict(gain_db=(-6.0, 0.0, 6.0)), "gain_db must be a"),
    (dict(speed=(0.9, 1.1), crop_seconds=None), "need crop_seconds"),
    (dict(augment=CropAugmentation(eq_db=3.0), crop_seconds=None), "need crop_seconds"),
    (dict(augment={"eq_db": 3.0}), "augment must be a CropAugmentation"),
])
def test_augmentation_errors(folder, kwargs, message):
    root, _ = folder
    with pytest.raises(DataError, match=message):
        AudioDataset(root, **{"crop_seconds": 1.0, **kwargs})


def test_crop_augmentation_is_seeded_and_cache_independent(tmp_path):
    t = np.arange(3 * RATE) / RATE
    sf.write(str(tmp_path / "sine.wav"), (0.25 * np.sin(2 * np.pi * 1000 * t)).astype(np.float32), RATE, subtype="FLOAT")
    kw = dict(crop_seconds=1.0, sample_rate=RATE, seed=3)
    plain = AudioDataset(tmp_path, **kw)[0]
    shifted = AudioDataset(tmp_path, augment=CropAugmentation(pitch_semitones=(3.0, 3.0)), **kw)[0]
    assert shifted["audio"].shape == (1, RATE) and shifted["offset"] == plain["offset"]  # same window, new pitch
    assert abs(_peak_hz(shifted["audio"][0].numpy()) - 1000 * 2 ** 0.25) <= 3
    everything = CropAugmentation(pitch_semitones=(-2, 2), eq_db=6, band_limit_hz=(3400, 7000), noise_snr_db=(10, 40),
                                  reverb_rt60=(0.1, 0.4))
    a = AudioDataset(tmp_path, augment=everything, speed=(0.9, 1.1), **kw)
    b = AudioDataset(tmp_path, augment=everything, speed=(0.9, 1.1), cache=True, **kw)
    torch.testing.assert_close(a[0]["audio"], b[0]["audio"], rtol=0, atol=0)
    first = a[0]["audio"]
    a.set_epoch(1)
    assert not torch.equal(a[0]["audio"], first)
    a.set_epoch(0)
    torch.testing.assert_close(a[0]["audio"], first, rtol=0, atol=0)


def test_band_limit_of_the_manifest_row_reaches_the_batch(tmp_path):
    t = np.arange(2 * RATE) / RATE
    sf.write(str(tmp_path / "a.wav"), (0.25 * np.sin(2 * np.pi * 300 * t)).astype(np.float32), RATE, subtype="FLOAT")
    rows = [{"path": "a.wav", "id": "phone", "split": "train", "band_limit_hz": 4000},
            {"path": "a.wav", "id": "wide", "split": "train", "band_limit_hz": None},
            {"path": "a.wav", "id": "unmarked", "split": "train"}]
    manifest = tmp_path / "m.jsonl"
    manifest.write_text("\n".join(json.dumps(r) for r in rows))
    whole = from_path(manifest)
    assert [whole[i]["band_limit_hz"] for i in range(3)] == [4000.0, math.inf, math.inf]
    batch = collate_audio([whole[i] for i in range(3)])
    assert batch["band_limit_hz"].dtype == torch.float32 and batch["band_limit_hz"].tolist() == [4000.0, math.inf, math.inf]
    # Speed and pitch move the band edge with the content; an augmented low-pass does not.
    moved = from_path(manifest, crop_seconds=0.5, speed=(1.1, 1.1),
                      augment=CropAugmentation(pitch_semitones=(-2.0, -2.0), band_limit_hz=(3000, 3000)))
    assert moved[0]["band_limit_hz"] == pytest.approx(4000 * 1.1 * 2 ** (-2 / 12))
    assert moved[1]["band_limit_hz"] == math.inf

    manifest.write_text(json.dumps({**rows[0], "band_limit_hz": "4 kHz"}))
    with pytest.raises(DataError, match="phone: band_limit_hz must be a positive number"):
        from_path(manifest)
