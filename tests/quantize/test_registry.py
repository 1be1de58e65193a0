import pytest
import torch

from audiolatent.core.errors import ConfigError
from audiolatent.quantize import BOTTLENECKS, Bottleneck, ResidualVQ, build_bottleneck

ALL_KINDS = {"vq", "rvq", "split-rvq", "grvq", "msrvq", "fsq", "lfq", "scalar", "gaussian", "softnorm", "identity", "levels", "kmeans", "segment", "query-pool"}


def test_every_kind_is_registered_and_builds():
    assert set(BOTTLENECKS) == ALL_KINDS
    for kind, cls in BOTTLENECKS.items():
        bottleneck = build_bottleneck({"kind": kind, "dim": 8})
        assert isinstance(bottleneck, cls) and isinstance(bottleneck, Bottleneck)
        assert cls.kind == kind
        out = bottleneck.eval()(torch.randn(2, 8, 8))
        assert out.z_q.shape == (2, 8, 8)
        assert len(out.streams) == len(bottleneck.stream_specs())


def test_build_passes_arguments_and_leaves_config_untouched():
    config = {"kind": "rvq", "dim": 16, "n_codebooks": 3, "codebook_size": 32}
    rvq = build_bottleneck(config)
    assert isinstance(rvq, ResidualVQ) and rvq.n_codebooks == 3 and rvq.codebook_size == 32
    assert config == {"kind": "rvq", "dim": 16, "n_codebooks": 3, "codebook_size": 32}


def test_unknown_kind():
    with pytest.raises(ConfigError, match=r"unknown bottleneck kind 'vqq' \(valid kinds: fsq, gaussian"):
        build_bottleneck({"kind": "vqq", "dim": 8})
    with pytest.raises(ConfigError, match="no 'kind'"):
        build_bottleneck({"dim": 8})


def test_unknown_key_names_it_and_lists_valid_keys():
    with pytest.raises(ConfigError) as info:
        build_bottleneck({"kind": "fsq", "dim": 8, "levelz": [8, 5]})
    message = str(info.value)
    assert "'levelz'" in message and "levels" in message and "n_codebooks" in message
    assert "\n" not in message


def test_missing_required_key():
    with pytest.raises(ConfigError, match="missing required key 'dim'"):
        build_bottleneck({"kind": "rvq"})


def test_not_a_mapping():
    with pytest.raises(ConfigError):
        build_bottleneck(["rvq"])
