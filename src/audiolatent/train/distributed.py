"""Process group setup for training: one process, or ``torchrun`` (env ``RANK``/``WORLD_SIZE``).

:class:`DistributedContext` is created once by the trainer. Under ``torchrun`` it initialises
``torch.distributed`` (``nccl`` when CUDA is available, else ``gloo``) and pins each process to
GPU ``LOCAL_RANK``; otherwise it is a single-process no-op with the same interface, so the
training loop has no ``if distributed`` branches besides the ones here.

The only collectives the trainer issues itself go through :meth:`DistributedContext.any` (one
small all-reduce per step that makes every rank take the same decision: skip a non-finite
step, stop on SIGTERM) and :meth:`barrier`; gradients are reduced by DDP and codebooks by the
bottleneck's ``sync_distributed``. The bench shards its files with the same context and
collects per-file results with :meth:`gather` (and rank 0's results with :meth:`broadcast`).
"""

from __future__ import annotations

import datetime
import os

import torch
import torch.distributed as dist

__all__ = ["DistributedContext"]


class DistributedContext:
    """Rank, world size and device of this process, and the few collectives the trainer needs.

    Args:
        device: ``"cpu"``, ``"cuda"``... ``None``: CUDA (``cuda:LOCAL_RANK``) if available, else CPU.
    """

    def __init__(self, device: str | None = None) -> None:
        self.world_size = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        self.local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        if device is None:
            device = f"cuda:{self.local_rank}" if torch.cuda.is_available() else "cpu"
        elif device == "cuda":
            device = f"cuda:{self.local_rank}"
        self.device = torch.device(device)
        if self.device.type == "cuda":
            torch.cuda.set_device(self.device)
        self.owns_group = False
        if self.world_size > 1 and not dist.is_initialized():
            backend = "nccl" if self.device.type == "cuda" else "gloo"
            dist.init_process_group(backend, timeout=datetime.timedelta(minutes=30))
            self.owns_group = True

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def any(self, flags: list[bool]) -> list[bool]:
        """Element-wise logical OR of ``flags`` over all ranks (one all-reduce)."""
        if not self.distributed:
            return list(flags)
        tensor = torch.tensor([float(f) for f in flags], device=self.device)
        dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
        return [bool(v) for v in tensor.tolist()]

    def mean(self, tensor: torch.Tensor) -> torch.Tensor:
        """All-reduced mean of ``tensor`` over ranks (a copy; the input is untouched)."""
        if not self.distributed:
            return tensor
        out = tensor.detach().clone()
        dist.all_reduce(out)
        return out / self.world_size

    def gather(self, items: list) -> list:
        """Every rank's ``items`` (picklable; tensors travel on the CPU), concatenated in rank
        order, on every rank (one ``all_gather_object``); ``items`` itself in one process."""
        if not self.distributed:
            return list(items)
        parts: list = [None] * self.world_size
        dist.all_gather_object(parts, list(items))
        return [item for part in parts for item in part]

    def broadcast(self, obj):
        """Rank 0's ``obj`` on every rank (picklable)."""
        if not self.distributed:
            return obj
        box = [obj if self.is_main else None]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def barrier(self) -> None:
        if self.distributed:
            dist.barrier()

    def close(self) -> None:
        if self.owns_group and dist.is_initialized():
            dist.destroy_process_group()
            self.owns_group = False
