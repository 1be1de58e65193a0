"""The metric registry: every bench metric with the metadata that decides where it applies.

Idea from VERSA (Shi et al., 2024, "VERSA: A Versatile Evaluation of Speech and Audio"): a metric
declares what it needs (a reference signal, a transcript, phoneme alignments, an optional
package), what values it takes and which direction is better, and the bench selects the metrics
that apply to a dataset and tokenizer from that metadata instead of from a hand-written list.

Each :class:`Metric` lives on one of the four axes of DESIGN.md — ``rate``, ``distortion``,
``modelability``, ``streaming`` — and its ``fn`` takes what that axis measures:

* ``distortion``: ``fn(reference, estimate, sample_rate, **extras) -> [B]`` on ``[B, C, N]``
  audio; ``reference`` is None for reference-free metrics (DNSMOS) and ``extras`` holds
  ``transcripts`` (a list of strings) for metrics with ``needs_transcript``;
* ``rate``: ``fn(latents: list[Latent]) -> dict``;
* ``streaming``: ``fn(tokenizer) -> dict``;
* ``modelability``: defined by the modelability module.

The modules that define metrics register them (``register_metric`` at import time);
:func:`available_metrics` imports the built-in metric modules first, so callers never need to.

Optional packages: a metric whose ``package`` cannot be imported is skipped by
:func:`available_metrics` (``installed_only=True``, the default) and, when called anyway, raises
:class:`MetricUnavailable` whose message says which ``pip install`` fixes it.

Opt-in metrics (``opt_in=True``: the learned ones of :mod:`audiolatent.bench.learned_metrics`,
Whisper WER and speaker similarity, which run a pretrained network on every file) are left out of
:func:`available_metrics` unless it is called with ``opt_in=True``, so no default selection runs
them; :func:`get_metric` returns them by name.

Example::

    from audiolatent.bench.metrics import available_metrics, get_metric
    names = [m.name for m in available_metrics("distortion", has_reference=True, speech=True)]
    value = get_metric("si_snr")(reference, estimate, 16000)   # [B] tensor, dB
"""

from __future__ import annotations

import importlib
import importlib.util
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = [
    "AXES",
    "Metric",
    "MetricUnavailable",
    "register_metric",
    "get_metric",
    "available_metrics",
    "all_metrics",
    "require_package",
]

AXES = ("rate", "distortion", "modelability", "streaming")

#: modules whose import registers the built-in metrics
_BUILTIN_MODULES = ("audiolatent.bench.distortion", "audiolatent.bench.learned_metrics", "audiolatent.bench.rate",
                    "audiolatent.bench.streaming")

_REGISTRY: dict[str, "Metric"] = {}


class MetricUnavailable(RuntimeError):
    """A metric cannot run here (an optional package is missing); the message says how to fix it."""


def require_package(package: str, pip_name: str | None = None, metric: str = "") -> Any:
    """Import and return ``package``, or raise :class:`MetricUnavailable` naming the pip command."""
    try:
        return importlib.import_module(package)
    except ImportError as exc:
        who = f"metric {metric!r} needs" if metric else "this needs"
        raise MetricUnavailable(
            f"{who} the optional package {package!r}, which is not importable ({exc}); "
            f"pip install {pip_name or package}"
        ) from None


@dataclass(frozen=True)
class Metric:
    """One metric and its metadata. See the module docstring for the ``fn`` signature per axis.

    Attributes:
        name: registry key (snake_case, e.g. ``"pesq_wb"``).
        axis: one of :data:`AXES`.
        fn: the function computing it.
        unit: e.g. ``"dB"``, ``"bits/s"``, ``"cents"``, ``"MOS (1-4.64)"``, ``""`` for ratios.
        value_range: ``(low, high)`` of possible values (``math.inf`` for unbounded).
        higher_is_better: the direction; None where neither is better (e.g. frame rate).
        description: one line; the full definition lives in the function's docstring and
            docs/metrics.md.
        needs_reference: needs the original audio beside the decoded one.
        needs_transcript: needs the text spoken in the audio.
        needs_phones: needs phoneme alignments.
        speech_only: only meaningful on speech (PESQ, STOI, F0, WER, DNSMOS).
        package: import name of an optional package it needs, or None.
        pip_name: what to ``pip install`` when it differs from ``package`` (a distribution
            or an extra, e.g. ``'audiolatent[adapters]'``).
        sample_rate: the rate (Hz) it scores at, inputs at other rates being resampled to it;
            None where it works at the input's rate.
        opt_in: off by default: computed only when asked for by name (a pretrained network run on
            every file); :func:`available_metrics` lists it only with ``opt_in=True``.
    """

    name: str
    axis: str
    fn: Callable[..., Any]
    unit: str
    value_range: tuple[float, float]
    higher_is_better: bool | None
    description: str
    needs_reference: bool = False
    needs_transcript: bool = False
    needs_phones: bool = False
    speech_only: bool = False
    package: str | None = None
    pip_name: str | None = None
    sample_rate: int | None = None
    opt_in: bool = False

    def __post_init__(self) -> None:
        if self.axis not in AXES:
            raise ValueError(f"metric {self.name!r}: axis must be one of {AXES}, got {self.axis!r}")
        low, high = self.value_range
        if not low <= high:
            raise ValueError(f"metric {self.name!r}: value_range {self.value_range} is not (low, high)")

    @property
    def installed(self) -> bool:
        """True when the optional package (if any) is importable."""
        return self.package is None or importlib.util.find_spec(self.package) is not None

    def unavailable_reason(self) -> str | None:
        """None when the metric can run, else a message with the ``pip install`` that fixes it."""
        if self.installed:
            return None
        return f"metric {self.name!r} needs the optional package {self.package!r}; pip install {self.pip_name or self.package}"

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        reason = self.unavailable_reason()
        if reason is not None:
            raise MetricUnavailable(reason)
        return self.fn(*args, **kwargs)

    def in_range(self, value: float) -> bool:
        """Whether ``value`` lies in the declared range (NaN counts as out of range)."""
        low, high = self.value_range
        return not math.isnan(value) and low <= value <= high


def register_metric(metric: Metric) -> Metric:
    """Add ``metric`` to the registry (re-registering the same name replaces it, for reloads)."""
    _REGISTRY[metric.name] = metric
    return metric


def _load_builtin() -> None:
    for module in _BUILTIN_MODULES:
        importlib.import_module(module)


def all_metrics() -> list[Metric]:
    """Every registered metric, sorted by axis then name."""
    _load_builtin()
    return sorted(_REGISTRY.values(), key=lambda m: (AXES.index(m.axis), m.name))


def get_metric(name: str) -> Metric:
    """The metric registered under ``name`` (KeyError lists the known names)."""
    _load_builtin()
    if name not in _REGISTRY:
        raise KeyError(f"unknown metric {name!r}; known: {sorted(_REGISTRY)}")
    return _REGISTRY[name]


def available_metrics(
    axis: str | None = None,
    *,
    has_reference: bool = True,
    has_transcript: bool = False,
    has_phones: bool = False,
    speech: bool = True,
    installed_only: bool = True,
    opt_in: bool = False,
) -> list[Metric]:
    """The metrics that apply to a dataset/tokenizer with the given properties.

    Args:
        axis: keep only this axis (None: all axes).
        has_reference: the reference audio is available (always, for round trips).
        has_transcript: the dataset has transcripts (enables WER).
        has_phones: the dataset has phoneme alignments (enables the phoneme probe).
        speech: the audio is speech (enables PESQ, STOI, F0, WER, DNSMOS).
        installed_only: drop metrics whose optional package is missing (their
            :meth:`Metric.unavailable_reason` says what to install).
        opt_in: also list the opt-in metrics (:attr:`Metric.opt_in`), e.g. to check a name the
            user asked for; without it they are never part of a default selection.
    """
    if axis is not None and axis not in AXES:
        raise ValueError(f"axis must be one of {AXES}, got {axis!r}")
    selected = []
    for m in all_metrics():
        if axis is not None and m.axis != axis:
            continue
        if (m.needs_reference and not has_reference) or (m.needs_transcript and not has_transcript):
            continue
        if (m.needs_phones and not has_phones) or (m.speech_only and not speech):
            continue
        if installed_only and not m.installed:
            continue
        if m.opt_in and not opt_in:
            continue
        selected.append(m)
    return selected
