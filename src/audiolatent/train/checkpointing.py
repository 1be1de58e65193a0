"""Training checkpoints: a loadable tokenizer directory plus everything needed to resume exactly.

Layout of a run folder ``OUT``::

    OUT/checkpoints/step_000123/config.yaml        # the codec (audiolatent.load_tokenizer(dir) loads it)
    OUT/checkpoints/step_000123/model.safetensors
    OUT/checkpoints/step_000123/trainer_state.pt   # see below
    OUT/latest                                     # one line: "step_000123"

``trainer_state.pt`` (``torch.load(..., weights_only=True)``-safe: tensors, numbers, strings,
lists and dicts only) holds ``step``, the optimiser and scheduler states of the codec and the
discriminators, the discriminator weights, the loss balancer's averages, the data position
``{"epoch", "batch"}``, the non-finite counter and the RNG states of Python, NumPy and torch
(CPU and CUDA) *after* the step.

Every checkpoint directory is written with :func:`~audiolatent.core.atomic.atomic_dir` (temp
dir, then rename) and ``latest`` with an atomic file replace, so a crash leaves the previous
checkpoint intact. Weights are checked before writing: a non-finite tensor raises instead of
being saved. Only the newest ``keep_last`` ``step_*`` directories are kept.
"""

from __future__ import annotations

import os
import random
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file

from audiolatent.core.atomic import atomic_dir, atomic_path, remove_stale_temps
from audiolatent.core.checkpoint import (
    is_replaceable_checkpoint,
    CONFIG_FILE,
    LATEST_FILE,
    STEP_DIR,
    WEIGHTS_FILE,
    decompress_weights,
    latest_checkpoint,
    write_model_files,
)
from audiolatent.core.config import load_yaml
from audiolatent.core.errors import CheckpointError, ConfigError, OutputError

if TYPE_CHECKING:
    from audiolatent.core.tokenizer import Tokenizer

__all__ = [
    "TRAINER_STATE_FILE", "LATEST_FILE", "checkpoint_name", "save_training_checkpoint", "resolve_checkpoint",
    "load_training_checkpoint", "rng_state", "set_rng_state", "TrainingCheckpoint",
]

TRAINER_STATE_FILE = "trainer_state.pt"


def checkpoint_name(step: int) -> str:
    """``step_000123``: zero-padded to 6 digits (more when the step needs them), so names sort."""
    return f"step_{step:06d}"


def rng_state() -> dict[str, Any]:
    """RNG states of Python's ``random``, NumPy's global generator and torch (CPU + every CUDA device)."""
    version, internal, gauss = random.getstate()
    name, keys, pos, has_gauss, cached = np.random.get_state()
    state: dict[str, Any] = {
        "python": {"version": version, "state": list(internal), "gauss": gauss},
        "numpy": {"name": name, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "cached": float(cached)},
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`rng_state` returned."""
    py = state["python"]
    random.setstate((py["version"], tuple(py["state"]), py["gauss"]))
    npy = state["numpy"]
    np.random.set_state((npy["name"], npy["keys"].numpy().astype(np.uint32), npy["pos"], npy["has_gauss"], npy["cached"]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _check_finite(module: torch.nn.Module, what: str) -> None:
    for name, tensor in module.state_dict().items():
        if tensor.is_floating_point() and not torch.isfinite(tensor).all():
            raise FloatingPointError(f"refusing to write a checkpoint: {what} tensor {name!r} is not finite")


def save_training_checkpoint(out: str | os.PathLike, step: int, codec: "Tokenizer", state: dict[str, Any],
                             keep_last: int, extra: dict | None = None,
                             discriminators: torch.nn.Module | None = None) -> Path:
    """Write ``OUT/checkpoints/step_<step>/`` atomically, point ``OUT/latest`` at it, prune old ones.

    Args:
        out: the run folder.
        step: optimiser steps completed.
        codec: the unwrapped tokenizer (its weights go to model.safetensors).
        state: the trainer state (``trainer_state.pt``; see the module docstring).
        keep_last: how many ``step_*`` directories to keep (the new one included).
        extra: more keys for config.yaml (e.g. ``{"training": {"step": 123}}``).
        discriminators: checked for finite weights too (they are saved inside ``state``).

    Raises:
        FloatingPointError: a weight is NaN/inf (nothing is written).
    """
    _check_finite(codec, "model")
    if discriminators is not None:
        _check_finite(discriminators, "discriminator")
    root = Path(out) / "checkpoints"
    name = checkpoint_name(step)
    with atomic_dir(root / name, may_replace=is_replaceable_checkpoint) as tmp:
        write_model_files(codec, tmp, extra)
        torch.save(state, tmp / TRAINER_STATE_FILE)
    with atomic_path(Path(out) / LATEST_FILE) as tmp:
        tmp.write_text(name + "\n")
    steps = sorted((int(m.group(1)), p) for p in root.iterdir() if (m := STEP_DIR.match(p.name)) and p.is_dir())
    for _, old in steps[: max(0, len(steps) - keep_last)]:
        if old.name != name:
            shutil.rmtree(old, ignore_errors=True)
    return root / name


def resolve_checkpoint(path: str | os.PathLike) -> Path:
    """The checkpoint directory meant by ``path``: a ``step_*`` directory, a run folder (its
    ``latest`` pointer, else its newest ``checkpoints/step_*``), or the name of a codec shipped in
    the package (``codec-16k-default``) when no such path exists.

    Raises:
        CheckpointError: nothing checkpoint-like at ``path``.
    """
    path = Path(path)
    if not path.exists() and len(path.parts) == 1:
        from audiolatent.tokenizers.pretrained import PRETRAINED_DIR, pretrained_path

        if (PRETRAINED_DIR / path.name).is_dir():  # a shipped codec by name: codec-16k-default
            return pretrained_path(path.name)
    if (path / CONFIG_FILE).is_file() or STEP_DIR.match(path.name):
        if not path.is_dir():
            raise CheckpointError(f"{path}: checkpoint directory does not exist")
        return path
    if not path.is_dir():
        raise CheckpointError(f"{path}: no checkpoint there (no such checkpoint or run folder)")
    latest = latest_checkpoint(path)
    if latest is not None:
        return latest
    candidates = sorted((int(m.group(1)), p) for p in (path / "checkpoints").glob("step_*") if (m := STEP_DIR.match(p.name)))
    if not candidates:
        raise CheckpointError(f"{path}: no checkpoint found (no {LATEST_FILE} file and no checkpoints/step_*)")
    return candidates[-1][1]


class TrainingCheckpoint:
    """What :func:`load_training_checkpoint` read: ``directory``, ``config`` (config.yaml as a dict),
    ``weights`` (codec state dict) and ``state`` (trainer state, or None for a plain tokenizer checkpoint)."""

    def __init__(self, directory: Path, config: dict, weights: dict[str, torch.Tensor], state: dict | None) -> None:
        self.directory, self.config, self.weights, self.state = directory, config, weights, state


def load_training_checkpoint(path: str | os.PathLike, need_state: bool = True) -> TrainingCheckpoint:
    """Read and validate a checkpoint (see :func:`resolve_checkpoint` for what ``path`` may be).

    ``need_state=False`` (``--init-from``) also accepts a tokenizer checkpoint without
    ``trainer_state.pt``.

    Raises:
        CheckpointError: missing, incomplete or corrupt files, naming the file.
    """
    directory = resolve_checkpoint(path)
    cfg_path, weights_path, state_path = directory / CONFIG_FILE, directory / WEIGHTS_FILE, directory / TRAINER_STATE_FILE
    for required in (cfg_path, weights_path) + ((state_path,) if need_state else ()):
        if not required.is_file():
            raise CheckpointError(f"{directory}: incomplete checkpoint, no {required.name}")
    try:
        config = load_yaml(cfg_path)
    except ConfigError as exc:
        raise CheckpointError(f"corrupt checkpoint: {exc}") from None
    if "config" not in config:
        raise CheckpointError(f"{cfg_path}: corrupt checkpoint config (no `config` section)")
    try:
        weights = decompress_weights(load_file(str(weights_path)), {}, weights_path)  # int8/float16 exports too
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"{weights_path}: corrupt weights file ({' '.join(str(exc).split())})") from None
    state = None
    if state_path.is_file():
        try:
            state = torch.load(state_path, map_location="cpu", weights_only=True)
        except Exception as exc:  # torch raises many types for a damaged zip/pickle
            raise CheckpointError(f"{state_path}: corrupt trainer state ({type(exc).__name__}: "
                                  f"{' '.join(str(exc).split())[:200]})") from None
        if not isinstance(state, dict) or "step" not in state:
            raise CheckpointError(f"{state_path}: corrupt trainer state (no step)")
    return TrainingCheckpoint(directory, config, weights, state)


def prepare_run_folder(out: str | os.PathLike, resume: bool, clean: bool = True) -> list[Path]:
    """Check a training run folder before anything is written, and clean what a killed run left.

    Raises OutputError when ``out`` is a file, or when it already holds a run (a ``latest``
    pointer or ``checkpoints/step_*``) and ``resume`` is False: starting over there would
    overwrite that run's checkpoints. With ``clean`` (rank 0), temporary entries a killed
    writer left (``.NAME.tmp.*`` in the folder and in ``checkpoints/``) are removed; returns them.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise OutputError(f"--out {out} is a file; a training run needs a folder")
    if not out.is_dir():
        return []
    checkpoints = out / "checkpoints"
    steps = sorted(p.name for p in checkpoints.iterdir() if STEP_DIR.match(p.name) and p.is_dir()) if checkpoints.is_dir() else []
    if not resume and ((out / LATEST_FILE).is_file() or steps):
        where = f" (latest: {steps[-1]})" if steps else ""
        raise OutputError(f"{out} already holds a training run{where}; pass --resume to continue it, or choose another --out "
                          "(starting over would overwrite its checkpoints)")
    if not clean:
        return []
    return remove_stale_temps(out) + remove_stale_temps(checkpoints)
