"""Tokenizer checkpoints: a directory with ``config.yaml`` and ``model.safetensors``.

``config.yaml`` holds everything needed to rebuild the module: its ``kind``, its ``config``
(the constructor's dataclass as plain YAML) and the audiolatent version that wrote it.
Training state (optimisers, RNG, data position) lives beside these two files and is ignored
by ``load_checkpoint``. Writes are atomic: the directory appears complete or not at all.
"""

from __future__ import annotations

import os
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

__all__ = ["save_checkpoint", "load_checkpoint", "write_model_files", "CONFIG_FILE", "WEIGHTS_FILE"]

CONFIG_FILE = "config.yaml"
WEIGHTS_FILE = "model.safetensors"


def _state_dict(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    # safetensors refuses shared storage; clone so tied weights are stored independently
    return {k: v.detach().cpu().contiguous().clone() for k, v in module.state_dict().items()}


def write_model_files(tokenizer: "Tokenizer", directory: str | os.PathLike, extra: dict | None = None) -> None:
    """Write config.yaml and model.safetensors into an existing ``directory`` (each atomically)."""
    from audiolatent import __version__

    directory = Path(directory)
    data = {"audiolatent_version": __version__, "kind": tokenizer.kind, "config": to_dict(tokenizer.config)}
    if extra:
        data.update(extra)
    with atomic_path(directory / WEIGHTS_FILE) as tmp:
        save_file(_state_dict(tokenizer), str(tmp), metadata={"kind": tokenizer.kind})
    save_yaml(data, directory / CONFIG_FILE)


def save_checkpoint(tokenizer: "Tokenizer", directory: str | os.PathLike, extra: dict | None = None) -> Path:
    """Write a loadable checkpoint directory atomically (replacing an existing one)."""
    with atomic_dir(directory) as tmp:
        write_model_files(tokenizer, tmp, extra)
    return Path(directory)


def load_checkpoint(directory: str | os.PathLike) -> "Tokenizer":
    """Rebuild a tokenizer from a checkpoint directory (or its config.yaml path)."""
    from audiolatent.core.registry import get_kind

    directory = Path(directory)
    if directory.is_file() and directory.name == CONFIG_FILE:
        directory = directory.parent
    if not directory.is_dir():
        raise CheckpointError(f"{directory}: not a checkpoint directory")
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
