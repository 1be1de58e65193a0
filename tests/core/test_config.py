from dataclasses import dataclass, field

import pytest

from audiolatent import ConfigError
from audiolatent.core.config import apply_overrides, config_hash, from_dict, to_dict


@dataclass
class Inner:
    channels: int = 32
    ratios: tuple[int, ...] = (2, 4)


@dataclass
class Outer:
    sample_rate: int = 16000
    gain: float = 1.0
    inner: Inner = field(default_factory=Inner)
    bottleneck: dict = field(default_factory=lambda: {"kind": "rvq", "n_q": 8})


def test_round_trip_nested():
    cfg = Outer(gain=2.0, inner=Inner(channels=8, ratios=(8, 5)))
    data = to_dict(cfg)
    assert data["inner"]["ratios"] == [8, 5]
    assert from_dict(Outer, data) == cfg


def test_unknown_key_names_it():
    with pytest.raises(ConfigError, match=r"config\.inner: unknown key\(s\) \['chanels'\]"):
        from_dict(Outer, {"inner": {"chanels": 3}})


def test_type_check():
    with pytest.raises(ConfigError, match="expected int"):
        from_dict(Outer, {"sample_rate": "fast"})
    assert from_dict(Outer, {"gain": 3}).gain == 3.0


def test_overrides():
    data = apply_overrides(to_dict(Outer()), ["inner.channels=64", "inner.ratios=[8, 5, 4]", "bottleneck.n_q=4"])
    cfg = from_dict(Outer, data)
    assert cfg.inner.channels == 64 and cfg.inner.ratios == (8, 5, 4) and cfg.bottleneck["n_q"] == 4
    with pytest.raises(ConfigError, match="unknown key 'nope'"):
        apply_overrides(to_dict(Outer()), ["inner.nope=1"])
    with pytest.raises(ConfigError, match="key=value"):
        apply_overrides(to_dict(Outer()), ["inner.channels"])


def test_hash_changes_with_config():
    assert config_hash(Outer()) == config_hash(Outer())
    assert config_hash(Outer()) != config_hash(Outer(gain=2.0))
