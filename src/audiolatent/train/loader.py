"""Training batches with a resumable position: ``(epoch, batch)`` is all a checkpoint needs.

Order. Epoch ``e`` visits the files in the permutation ``DistributedSampler(seed=seed).set_epoch(e)``
draws (the same on every rank; rank ``r`` takes every ``world_size``-th index, padded by
repetition so every rank has ``num_samples = ceil(n_files / world_size)`` items), and the
crops are those of :class:`~audiolatent.data.AudioDataset` for ``(seed, e, index)``. Both are
pure functions of the seed and the epoch, so the batch at ``(epoch, batch)`` is the same
whether training got there in one go or resumed from a checkpoint, with any number of workers.

Equal batch counts. Every rank has the same ``num_samples``; the last incomplete batch is
dropped when at least one full batch exists (else the epoch is one smaller batch), so all
ranks run the same number of steps per epoch and no rank waits forever in a collective.

The DataLoader gets its own ``torch.Generator``: creating an iterator then never draws from
the global torch RNG, which the model uses (quantizer dropout, k-means) and a checkpoint restores.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import torch
from torch.utils.data import DataLoader, DistributedSampler, Sampler

from audiolatent.data import AudioDataset, collate_audio

__all__ = ["ResumableLoader"]


class _IndexList(Sampler[int]):
    def __init__(self, indices: Sequence[int]) -> None:
        self.indices = list(indices)

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices)

    def __len__(self) -> int:
        return len(self.indices)


class ResumableLoader:
    """Endless stream of collated batches (``{"audio": [B, C, N], ...}``, see :func:`collate_audio`).

    Args:
        dataset: the training :class:`AudioDataset` (with ``crop_seconds`` set).
        batch_size: items per batch on this rank.
        num_workers: DataLoader workers.
        rank, world_size: this process's shard.
        seed: data-order seed (the dataset's own seed fixes the crops).
    """

    def __init__(self, dataset: AudioDataset, batch_size: int, num_workers: int = 0, rank: int = 0,
                 world_size: int = 1, seed: int = 0) -> None:
        self.dataset = dataset
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.seed = seed
        self.sampler = DistributedSampler(dataset, num_replicas=world_size, rank=rank, shuffle=True, seed=seed,
                                          drop_last=False)
        self.drop_last = self.sampler.num_samples >= batch_size
        per_epoch = self.sampler.num_samples
        self.batches_per_epoch = per_epoch // batch_size if self.drop_last else 1
        self.epoch = 0
        self.batch = 0  # index of the next batch within the epoch
        self._iterator: Iterator[dict[str, Any]] | None = None

    def state_dict(self) -> dict[str, int]:
        """Position of the next batch: ``{"epoch", "batch"}``."""
        return {"epoch": self.epoch, "batch": self.batch}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.epoch, self.batch = int(state["epoch"]), int(state["batch"])
        self._iterator = None

    def next(self) -> dict[str, Any]:
        """The next batch, starting a new epoch when this one is exhausted."""
        if self.batch >= self.batches_per_epoch:
            self.epoch, self.batch, self._iterator = self.epoch + 1, 0, None
        if self._iterator is None:
            self._iterator = iter(self._loader())
        batch = next(self._iterator)
        self.batch += 1
        return batch

    def _loader(self) -> DataLoader:
        self.dataset.set_epoch(self.epoch)
        self.sampler.set_epoch(self.epoch)
        indices = list(self.sampler)[self.batch * self.batch_size:]
        generator = torch.Generator().manual_seed(self.seed * 100003 + self.epoch)
        return DataLoader(
            self.dataset, batch_size=self.batch_size, sampler=_IndexList(indices), drop_last=self.drop_last,
            num_workers=self.num_workers, collate_fn=collate_audio, generator=generator,
            persistent_workers=False, pin_memory=False,
        )
