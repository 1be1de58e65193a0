"""Tokenizer checkpoints: a directory with ``config.yaml`` and ``model.safetensors``.

``config.yaml`` holds everything needed to rebuild the module: its ``kind``, its ``config``
(the constructor's dataclass as plain YAML) and the audiolatent version that wrote it.
Training state (optimisers, RNG, data position) lives beside these two files and is ignored
by ``load_checkpoint``. Writes are atomic: the directory appears complete or not at all.

Weights are stored in float32 by default. ``save_checkpoint(..., weights="float16" | "int8")``
writes a smaller file for shipping (the built-in ``codec-16k-default`` lives inside the package):

* ``float16``: every floating tensor cast to float16 (half the size);
* ``int8``: every floating *parameter* with at least two dimensions and ``INT8_MIN_NUMEL``
  elements (conv and linear weights: nearly all the bytes) is quantised symmetrically per output
  channel, ``w ~ scale[o] * q[o, ...]`` with ``q`` int8 in [-127, 127] and ``scale[o] =
  max|w[o]| / 127`` (stored beside it as ``NAME.__scale__``); everything else (biases, norms,
  buffers such as codebooks and running statistics) stays float32. A quarter of the size.

The format is recorded in the safetensors metadata (``weights``), and ``load_checkpoint``
restores float32 tensors of the module's own dtype, so a compressed checkpoint loads like any
other. Compression changes the numbers: measure the model after exporting (the README's table for
the default codec is measured on the shipped int8 weights).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from audiolatent.core.atomic import atomic_dir, atomic_path
from audiolatent.core.config import from_dict, load_yaml, save_yaml, to_dict
from audiolatent.core.errors import CheckpointError, ConfigError

if TYPE_CHECKING:
    from audiolatent.core.tokenizer import Tokenizer

__all__ = ["save_checkpoint", "load_checkpoint", "write_model_files", "decompress_weights", "latest_checkpoint", "LATEST_FILE", "STEP_DIR", "CONFIG_FILE", "WEIGHTS_FILE", "WEIGHT_FORMATS"]

CONFIG_FILE = "config.yaml"
WEIGHTS_FILE = "model.safetensors"
#: in a training run folder (``audiolatent train --out``): the name of its newest checkpoint
LATEST_FILE = "latest"
#: the name of one checkpoint directory in a run folder's ``checkpoints/``
STEP_DIR = re.compile(r"^step_(\d+)$")
WEIGHT_FORMATS = ("float32", "float16", "int8")
#: smallest parameter (elements) that ``int8`` quantises; smaller ones are not worth the error
INT8_MIN_NUMEL = 1024
_SCALE = ".__scale__"


def _compress(module: torch.nn.Module, state: dict[str, torch.Tensor], weights: str) -> dict[str, torch.Tensor]:
    if weights == "float32":
        return state
    if weights == "float16":
        return {k: v.half() if v.is_floating_point() else v for k, v in state.items()}
    parameters = {name for name, _ in module.named_parameters()}
    out = {}
    for name, value in state.items():
        if name in parameters and value.is_floating_point() and value.ndim >= 2 and value.numel() >= INT8_MIN_NUMEL:
            flat = value.float().reshape(value.shape[0], -1)
            scale = (flat.abs().amax(dim=1) / 127.0).clamp_min(1e-12)
            out[name] = torch.round(flat / scale[:, None]).clamp(-127, 127).to(torch.int8).reshape(value.shape)
            out[name + _SCALE] = scale
        else:
            out[name] = value
    return out


def decompress_weights(state: dict[str, torch.Tensor], expected: dict[str, torch.Tensor], where: Path) -> dict[str, torch.Tensor]:
    """Float tensors from a stored state dict of any ``WEIGHT_FORMATS`` (int8 dequantised with its
    per-channel scales; each float cast to the dtype of its ``expected`` counterpart, if any)."""
    out = {}
    for name, value in state.items():
        if name.endswith(_SCALE):
            continue
        if name + _SCALE in state:
            scale = state[name + _SCALE].float()
            if value.dtype != torch.int8 or scale.shape != (value.shape[0],):
                raise CheckpointError(f"{where}: corrupt int8 weights for {name}")
            value = value.float() * scale.reshape(-1, *([1] * (value.ndim - 1)))
        target = expected.get(name)
        if target is not None and target.is_floating_point() and value.is_floating_point():
            value = value.to(target.dtype)
        out[name] = value
    return out


def _state_dict(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    # safetensors refuses shared storage; clone so tied weights are stored independently
    return {k: v.detach().cpu().contiguous().clone() for k, v in module.state_dict().items()}


def write_model_files(
    tokenizer: "Tokenizer", directory: str | os.PathLike, extra: dict | None = None, weights: str = "float32"
) -> None:
    """Write config.yaml and model.safetensors into an existing ``directory`` (each atomically).

    ``weights``: one of ``WEIGHT_FORMATS`` (see the module docstring).
    """
    from audiolatent import __version__

    if weights not in WEIGHT_FORMATS:
        raise CheckpointError(f"weights must be one of {', '.join(WEIGHT_FORMATS)}, got {weights!r}")
    directory = Path(directory)
    data = {"audiolatent_version": __version__, "kind": tokenizer.kind, "config": to_dict(tokenizer.config)}
    if extra:
        data.update(extra)
    if weights != "float32":
        data["weights"] = weights
    state = _compress(tokenizer, _state_dict(tokenizer), weights)
    with atomic_path(directory / WEIGHTS_FILE) as tmp:
        save_file(state, str(tmp), metadata={"kind": tokenizer.kind, "weights": weights})
    save_yaml(data, directory / CONFIG_FILE)


def is_replaceable_checkpoint(path: Path) -> bool:
    """True for a directory a checkpoint writer may replace: an empty one, or a checkpoint
    (its ``config.yaml`` is there). A user's folder of other files is never replaced."""
    path = Path(path)
    return path.is_dir() and (not any(path.iterdir()) or (path / CONFIG_FILE).is_file())


def save_checkpoint(
    tokenizer: "Tokenizer", directory: str | os.PathLike, extra: dict | None = None, weights: str = "float32"
) -> Path:
    """Write a loadable checkpoint directory atomically (replacing an existing checkpoint).

    ``weights``: ``"float32"`` (default), ``"float16"`` or ``"int8"`` (module docstring).

    Raises:
        OutputError: ``directory`` exists and is neither empty nor a checkpoint (a user's folder,
            an audio file...), or cannot be written; nothing is changed then.
        ConfigError: the tokenizer is a view of another one (``checkpointable`` False, e.g.
            ``codec-16k-varrate-phones``), which has no checkpoint of its own.
    """
    if not getattr(tokenizer, "checkpointable", True):
        raise ConfigError(f"{tokenizer.name}: a view of another tokenizer ({tokenizer.config}), not a checkpoint of "
                          "its own; save or export the tokenizer it wraps")
    with atomic_dir(directory, may_replace=is_replaceable_checkpoint) as tmp:
        write_model_files(tokenizer, tmp, extra, weights)
    return Path(directory)


def latest_checkpoint(run: Path) -> Path | None:
    """The checkpoint named by a training run folder's ``latest`` pointer (None without one).

    Raises:
        CheckpointError: the pointer names no ``checkpoints/step_*`` directory of ``run``.
    """
    pointer = run / LATEST_FILE
    if not pointer.is_file():
        return None
    try:
        name = pointer.read_text(encoding="utf-8").strip()
    except (UnicodeDecodeError, OSError) as exc:
        raise CheckpointError(f"{pointer}: unreadable pointer file ({type(exc).__name__}); it should hold a step_N "
                              "checkpoint name: remove it to start over, or write the name of a checkpoint into it") from None
    target = run / "checkpoints" / name
    if not STEP_DIR.match(name) or not target.is_dir():
        raise CheckpointError(f"{pointer}: points at {name!r}, which is not a checkpoint in {run / 'checkpoints'}")
    return target


def load_checkpoint(directory: str | os.PathLike) -> "Tokenizer":
    """Rebuild a tokenizer from a checkpoint directory (or its config.yaml path, or a training run
    folder: its ``latest`` checkpoint)."""
    from audiolatent.core.registry import get_kind

    directory = Path(directory)
    if directory.is_file() and directory.name == CONFIG_FILE:
        directory = directory.parent
    if not directory.is_dir():
        raise CheckpointError(f"{directory}: not a checkpoint directory")
    if not (directory / CONFIG_FILE).exists():
        directory = latest_checkpoint(directory) or directory  # a training run folder: its newest checkpoint
    cfg_path, weights_path = directory / CONFIG_FILE, directory / WEIGHTS_FILE
    if not cfg_path.is_file():
        raise CheckpointError(f"{directory}: incomplete checkpoint, no {CONFIG_FILE}")
    try:
        data = load_yaml(cfg_path)
    except ConfigError as exc:
        raise CheckpointError(f"corrupt checkpoint: {exc}") from None
    if "kind" not in data or "config" not in data:
        raise CheckpointError(f"{cfg_path}: corrupt checkpoint config (needs `kind` and `config`)")
    cls = get_kind(data["kind"])
    try:
        config = from_dict(cls.config_class, data["config"], where=f"{cfg_path}:config")
        tok = cls(config)
    except ConfigError as exc:
        raise CheckpointError(f"cannot rebuild checkpoint: {exc}") from None
    expected = tok.state_dict()
    if expected:
        if not weights_path.is_file():
            raise CheckpointError(f"{directory}: incomplete checkpoint, no {WEIGHTS_FILE}")
        try:
            state = load_file(str(weights_path))
        except (SafetensorError, OSError, ValueError) as exc:
            raise CheckpointError(f"{weights_path}: corrupt weights file ({' '.join(str(exc).split())})") from None
        state = decompress_weights(state, expected, weights_path)
        missing = sorted(set(expected) - set(state))
        unexpected = sorted(set(state) - set(expected))
        if missing or unexpected:
            raise CheckpointError(
                f"{weights_path}: weights do not match the config (missing {missing[:5]}, unexpected {unexpected[:5]})"
            )
        bad = [k for k in expected if expected[k].shape != state[k].shape]
        if bad:
            raise CheckpointError(f"{weights_path}: shape mismatch for {bad[:5]}")
        tok.load_state_dict(state)
    tok.name = str(directory)
    return tok
