import pytest
import torch

from audiolatent.bench import metrics as metrics_module
from audiolatent.bench.metrics import (
    Metric,
    MetricUnavailable,
    all_metrics,
    available_metrics,
    get_metric,
    register_metric,
    require_package,
)


def test_builtin_metrics_are_registered_with_metadata():
    names = {m.name for m in all_metrics()}
    assert {"si_snr", "mel_distance", "stft_distance", "pesq_wb", "stoi", "estoi", "f0_rmse_cents",
            "voicing_error", "asr_wer", "dnsmos", "rate", "streaming"} <= names
    pesq = get_metric("pesq_wb")
    assert pesq.axis == "distortion" and pesq.needs_reference and pesq.speech_only
    assert pesq.higher_is_better and pesq.value_range == (1.0, 4.64) and pesq.package == "pesq"


def test_selection_follows_the_metadata():
    music = {m.name for m in available_metrics("distortion", speech=False, installed_only=False)}
    assert "si_snr" in music and "pesq_wb" not in music and "asr_wer" not in music
    no_text = {m.name for m in available_metrics("distortion", installed_only=False)}
    assert "asr_wer" not in no_text and "pesq_wb" in no_text
    with_text = {m.name for m in available_metrics("distortion", has_transcript=True, installed_only=False)}
    assert "asr_wer" in with_text
    no_reference = {m.name for m in available_metrics("distortion", has_reference=False, installed_only=False)}
    assert no_reference <= {"dnsmos", "asr_wer"}
    assert {m.axis for m in available_metrics("rate")} == {"rate"}


def test_missing_package_gives_a_clear_message_not_a_crash(monkeypatch):
    monkeypatch.setattr(metrics_module, "_REGISTRY", dict(metrics_module._REGISTRY))  # undone after the test
    metric = register_metric(Metric(
        "test_missing", "distortion", lambda r, e, sr: r, "", (0.0, 1.0), True, "needs a missing package",
        package="audiolatent_no_such_package", pip_name="no-such-package",
    ))
    assert not metric.installed
    assert "pip install no-such-package" in metric.unavailable_reason()
    assert "test_missing" not in {m.name for m in available_metrics()}
    assert "test_missing" in {m.name for m in available_metrics(installed_only=False)}
    with pytest.raises(MetricUnavailable, match="pip install no-such-package"):
        metric(torch.zeros(1), torch.zeros(1), 16000)
    with pytest.raises(MetricUnavailable, match="pip install x-y"):
        require_package("audiolatent_no_such_package", "x-y")


def test_registered_distortion_metrics_share_one_signature(speech):
    for metric in available_metrics("distortion", speech=True):
        if metric.name in ("pesq_wb", "stoi", "estoi", "f0_rmse_cents", "voicing_error", "mel_distance"):
            continue  # exercised in test_distortion; keep this test fast
        value = metric(speech, speech, 16000)
        assert value.shape == (1,)
        assert metric.in_range(float(value[0]))


def test_validation():
    with pytest.raises(ValueError, match="axis"):
        Metric("x", "quality", abs, "", (0, 1), True, "")
    with pytest.raises(KeyError, match="known"):
        get_metric("no_such_metric")
