"""What a training run writes besides checkpoints: metrics.jsonl, TensorBoard events, progress bar.

* ``OUT/metrics.jsonl``: one JSON object per line, ``{"step": int, "split": "train"|<the eval split>, ...}``
  with the scalars of that log step (losses, ``lr``, ``grad_norm``, ``steps_per_second``,
  ``nonfinite_steps``; evaluation: ``eval/mel_distance``, ``eval/usage/<layer>``, ...). On
  resume, lines after the resumed step (from a run that went further before it was killed) are
  dropped, so the file reads as one continuous run.
* ``OUT/tensorboard/``: the same scalars as TensorBoard event files when the ``tensorboard``
  package is importable; otherwise a one-line notice and nothing else.
* a tqdm bar with the loss and steps/s, only on rank 0 and only when stderr is a terminal.

Only rank 0 writes; other ranks get a logger whose methods do nothing.
"""

from __future__ import annotations

import json
import math
import os
import sys
from pathlib import Path

from tqdm import tqdm

__all__ = ["RunLogger"]


def _jsonable(value: float) -> float | None:
    return value if math.isfinite(value) else None


class RunLogger:
    """Scalars to ``metrics.jsonl`` (+ TensorBoard) and a progress bar.

    Args:
        out: the run folder.
        enabled: False on ranks other than 0.
        total_steps: for the progress bar.
        start_step: steps already done (resume); later lines of metrics.jsonl are dropped.
        progress: show the bar (None: when stderr is a terminal).
    """

    def __init__(self, out: str | os.PathLike, enabled: bool, total_steps: int, start_step: int = 0,
                 progress: bool | None = None) -> None:
        self.enabled = enabled
        self.path = Path(out) / "metrics.jsonl"
        self.writer = None
        self.bar = None
        if not enabled:
            return
        if self.path.exists():
            kept = [line for line in self.path.read_text().splitlines()
                    if line.strip() and json.loads(line).get("step", 0) <= start_step]
            self.path.write_text("".join(line + "\n" for line in kept))
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            self.info("tensorboard is not installed: logging to metrics.jsonl only (pip install tensorboard for event files)")
        else:
            self.writer = SummaryWriter(str(Path(out) / "tensorboard"), purge_step=start_step + 1 if start_step else None)
        if progress is None:
            progress = sys.stderr.isatty()
        self.bar = tqdm(total=total_steps, initial=start_step, disable=not progress, unit="step", dynamic_ncols=True)

    def info(self, message: str) -> None:
        """One line on stderr (through tqdm so the bar stays intact)."""
        if self.enabled:
            tqdm.write(f"audiolatent train: {message}", file=sys.stderr)

    def log(self, step: int, scalars: dict[str, float], split: str = "train") -> None:
        """Append one record to metrics.jsonl and the same scalars to TensorBoard."""
        if not self.enabled:
            return
        record = {"step": step, "split": split, **{k: _jsonable(float(v)) for k, v in scalars.items()}}
        with self.path.open("a") as f:
            f.write(json.dumps(record) + "\n")
        if self.writer is not None:
            prefix = "" if split == "train" else f"{split}/"
            for key, value in scalars.items():
                self.writer.add_scalar(prefix + key.removeprefix("eval/"), float(value), step)

    def advance(self, loss: float, steps_per_second: float) -> None:
        """Move the bar by one step and show the loss and speed."""
        if self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix(loss=f"{loss:.4g}", it_s=f"{steps_per_second:.3g}", refresh=False)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        if self.writer is not None:
            self.writer.close()
