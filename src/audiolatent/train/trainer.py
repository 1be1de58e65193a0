"""Codec training loop: one process on a CPU, or DDP under ``torchrun``.

One optimiser step (``Trainer._step``), on every rank:

1. ``out = codec(x)`` for a batch ``x [B, C, N]`` (B = ``data.batch_size`` per rank); losses of
   ``y = out["audio"]`` against ``out["target"]`` (``x``, delayed by a decoder's declared delay)
   (:class:`~audiolatent.train.objective.CodecObjective`; with
   ``data.respect_band_limit`` the reconstruction losses ignore what lies above each item's
   ``band_limit_hz``); with the GAN on
   (discriminators configured, ``step >= adversarial_start_step``) also the discriminator loss
   on ``(x, y.detach())``;
2. one all-reduce of two flags: *some rank has a non-finite loss* and *some rank was asked to
   stop* (SIGTERM/SIGINT), so every rank takes the same decision;
3. a single backward pass per model (DDP averages gradients); gradient clipping. The semantic
   losses (``semantic`` section, :mod:`audiolatent.train.semantic`) join the bottleneck losses
   in that pass; their heads learn in a second parameter group of the codec's optimiser, their
   gradients averaged over ranks and clipped on their own;
4. if every loss and both gradient norms are finite: ``AdamW.step()`` for codec and
   discriminators, then ``codec.bottleneck.sync_distributed()`` — the one place codebooks are
   updated and synchronised (the trainer sets every quantiser to deferred updates, so a skipped
   step also discards its codebook statistics). Otherwise the step is skipped (no weight,
   optimiser-moment or codebook change), counted and logged; ``max_nonfinite`` skips in a row
   raise :class:`NonFiniteLossError`. Schedulers advance either way (``lr`` is a function of
   the step).

Then, on rank 0: log every ``log_every`` steps, evaluate every ``eval_every``, checkpoint every
``checkpoint_every`` and at the end (see :mod:`audiolatent.train.checkpointing`). SIGTERM or
Ctrl-C finishes the current step, writes a checkpoint and returns normally (the CLI then exits
0); a second Ctrl-C interrupts at once.

Determinism: with ``num_workers`` anything and on CPU, training ``2N`` steps equals training
``N``, stopping and resuming for ``N`` more (same losses to float precision): the checkpoint
restores weights, optimisers, schedulers, balancer averages, the data position and every RNG.
Under DDP the RNG state saved is rank 0's and is restored on every rank.
"""

from __future__ import annotations

import contextlib
import json
import math
import random
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from audiolatent.core.atomic import atomic_path
from audiolatent.core.config import from_dict, to_dict
from audiolatent.core.errors import AudioLatentError, CheckpointError, ConfigError
from audiolatent.core.provenance import environment
from audiolatent.data import AudioDataset, DataError, entries_from_path
from audiolatent.nn.spectral import StreamingISTFTHead
from audiolatent.tokenizers.codec import CodecConfig, NeuralCodec
from audiolatent.train.checkpointing import (load_training_checkpoint, prepare_run_folder, rng_state, save_training_checkpoint,
                                            set_rng_state)
from audiolatent.train.config import ScheduleConfig, TrainConfig
from audiolatent.train.discriminators import Discriminators
from audiolatent.train.distributed import DistributedContext
from audiolatent.train.evaluation import evaluate
from audiolatent.train.loader import ResumableLoader
from audiolatent.train.objective import CodecObjective
from audiolatent.train.semantic import SemanticObjective
from audiolatent.train.signals import StopSignals
from audiolatent.train.run_log import RunLogger

__all__ = ["Trainer", "NonFiniteLossError", "lr_multiplier"]


class NonFiniteLossError(AudioLatentError, FloatingPointError):
    """Too many consecutive steps with a NaN/inf loss or gradient (training diverged)."""


def lr_multiplier(schedule: ScheduleConfig, total_steps: int) -> Callable[[int], float]:
    """``f(s)``: learning-rate factor after ``s`` scheduler steps (see :class:`ScheduleConfig`)."""
    warmup = schedule.warmup_steps

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        if schedule.kind == "cosine":
            progress = min(1.0, (step - warmup) / max(1, total_steps - warmup))
            return schedule.min_lr_ratio + (1 - schedule.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))
        if schedule.kind == "exponential":
            return schedule.gamma ** (step - warmup)
        return 1.0

    return factor


def _finite(*values: torch.Tensor | float | None) -> bool:
    return all(v is None or bool(torch.isfinite(torch.as_tensor(v)).all()) for v in values)


class Trainer:
    """Train a :class:`~audiolatent.tokenizers.codec.NeuralCodec` as ``config`` says.

    Args:
        config: the run (:func:`~audiolatent.train.config.load_train_config`).
        data: manifests (``.jsonl``), folders or files; their entries are pooled, then split.
        out: run folder (checkpoints, metrics.jsonl, samples, run.json).
        resume: continue from ``out``'s latest checkpoint (CheckpointError if there is none).
        init_from: start from these codec weights (a checkpoint or run folder) with fresh
            optimisers and step 0.
        init_partial: with ``init_from``, load only the tensors whose name and shape match the
            configured model and leave the others at their fresh initialisation (e.g. a new
            decoder head); a sub-frame Vocos head is warm-started from the source's single-frame head
            when they correspond. What was loaded, warm-started and left fresh is logged and kept in run.json.
        device: torch device; None = ``cuda:LOCAL_RANK`` if available, else CPU.
        progress: tqdm bar (None: when stderr is a terminal; never on ranks > 0).

    ``loss_hook(step, losses) -> losses`` may replace the generator's reconstruction losses
    before the finiteness check (tests inject NaN with it).
    """

    def __init__(self, config: TrainConfig, data: Sequence[str], out: str | Path, *, resume: bool = False,
                 init_from: str | Path | None = None, init_partial: bool = False, device: str | None = None,
                 progress: bool | None = None, time_limit_s: float | None = None) -> None:
        self.config = config
        self.out = Path(out)
        self.data_sources = [str(d) for d in data]
        self.ctx = DistributedContext(device)
        cleaned = prepare_run_folder(self.out, resume, clean=self.ctx.is_main)
        self.device = self.ctx.device
        self.loss_hook: Callable[[int, dict[str, torch.Tensor]], dict[str, torch.Tensor]] | None = None
        random.seed(config.seed)
        np.random.seed(config.seed)
        torch.manual_seed(config.seed)

        self.codec = NeuralCodec(from_dict(CodecConfig, config.model, where="model")).to(self.device)
        for module in self.codec.modules():
            if hasattr(module, "deferred_update"):
                module.deferred_update = True  # codebooks change only in sync_distributed (step 4)
        self.discriminators = Discriminators(config.discriminators).to(self.device) if config.discriminators else None
        reduce = self.ctx.mean if self.ctx.distributed else None
        self.objective = CodecObjective(config.losses, self.codec.sample_rate, self.discriminators is not None,
                                        reduce_norms=reduce).to(self.device)
        self.use_gan = self.discriminators is not None and self.objective.adversarial_active
        self.semantic = None
        if config.semantic.active:
            self.semantic = SemanticObjective(config.semantic, self.codec.bottleneck.dim,
                                              self.codec.sample_rate / self.codec.encoder_hop, self.codec.sample_rate)
            self.semantic.to(self.device)
        opt = config.optim
        factor = lr_multiplier(config.schedule, config.steps)
        groups = [{"params": list(self.codec.parameters())}]
        if self.semantic is not None:  # the semantic heads learn with the codec, in a group of their own
            groups.append({"params": list(self.semantic.heads.parameters())})
        self.optimizer = torch.optim.AdamW(groups, lr=opt.lr, betas=tuple(opt.betas),
                                           weight_decay=opt.weight_decay, eps=opt.eps)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, factor)
        self.disc_optimizer = self.disc_scheduler = None
        if self.discriminators is not None:
            self.disc_optimizer = torch.optim.AdamW(self.discriminators.parameters(), lr=opt.disc_lr or opt.lr,
                                                    betas=tuple(opt.betas), weight_decay=opt.weight_decay, eps=opt.eps)
            self.disc_scheduler = torch.optim.lr_scheduler.LambdaLR(self.disc_optimizer, factor)

        self.train_set, self.eval_set, notices = self._datasets()
        self.loader = ResumableLoader(self.train_set, config.data.batch_size, config.data.num_workers,
                                      self.ctx.rank, self.ctx.world_size, config.seed)
        self.step = 0
        self.nonfinite_in_a_row = 0
        self.nonfinite_total = 0
        self.resumed_from = None
        self.initialised_from: dict | None = None
        if init_partial and init_from is None:
            raise ConfigError("init_partial needs init_from (the checkpoint to take the matching tensors from)")
        if resume:
            self._load_resume()
        elif init_from is not None:
            self.initialised_from = self._load_weights(init_from, partial=init_partial)
        self.logger = RunLogger(self.out, self.ctx.is_main, config.steps, self.step, progress)
        self.stop = StopSignals(self.logger, lambda: self.step, time_limit_s)
        for notice in notices:
            self.logger.info(notice)
        if cleaned:
            self.logger.info(f"removed {len(cleaned)} temporary entr{'y' if len(cleaned) == 1 else 'ies'} a stopped run left: "
                             + ", ".join(p.name for p in cleaned[:5]))
        if self.resumed_from:
            self.logger.info(f"resumed from step {self.step} ({self.resumed_from})")
        if self.initialised_from and self.initialised_from["partial"]:
            init = self.initialised_from
            self.logger.info(f"--init-partial: {len(init['loaded'])} tensors loaded from {init['source']}"
                             + (f"; warm-started from its single-frame head: {', '.join(init['warm_started'])}" if init["warm_started"] else "")
                             + (f"; fresh: {', '.join(init['fresh'])}" if init["fresh"] else ""))
        if config.precision == "bf16" and self.device.type != "cuda":
            self.logger.info("precision bf16 needs CUDA; training in fp32 on the CPU")
        self.model: nn.Module = self.codec
        self.disc_model: nn.Module | None = self.discriminators
        if self.ctx.distributed:
            ids = [self.device] if self.device.type == "cuda" else None
            self.model = DistributedDataParallel(self.codec, device_ids=ids, find_unused_parameters=True)
            if self.discriminators is not None:
                self.disc_model = DistributedDataParallel(self.discriminators, device_ids=ids)

    # --- setup -------------------------------------------------------------------------
    def _datasets(self) -> tuple[AudioDataset, AudioDataset | None, list[str]]:
        cfg = self.config.data
        entries = [e for source in self.data_sources for e in entries_from_path(source)]
        if not entries:
            raise DataError("no training data: pass --data MANIFEST_OR_FOLDER")
        common = dict(sample_rate=self.codec.sample_rate, seed=self.config.seed, cache=cfg.cache)
        train = AudioDataset(entries, split=cfg.train_split, crop_seconds=cfg.crop_seconds, speed=cfg.speed,
                             gain_db=cfg.gain_db, augment=cfg.augmentation(), **common)
        notices, evaluation = [], None
        if self.config.eval_every > 0 and self.ctx.is_main:
            try:
                evaluation = AudioDataset(entries, split=cfg.eval_split, crop_seconds=cfg.eval_crop_seconds,
                                          max_files=cfg.eval_max_files, **common)
            except DataError as exc:
                notices.append(f"no held-out evaluation ({exc})")
        notices.append(f"training on {len(train)} files ({train.total_seconds / 60:.1f} min), world size "
                       f"{self.ctx.world_size}, {self.codec.num_parameters() / 1e6:.2f}M codec parameters")
        return train, evaluation, notices

    def _load_weights(self, source: str | Path, partial: bool = False) -> dict:
        """Load codec weights; ``partial``: only tensors whose name and shape match. Returns what was loaded."""
        checkpoint = load_training_checkpoint(source, need_state=False)
        weights = checkpoint.weights
        current = self.codec.state_dict()
        fresh: list[str] = []
        if partial:
            weights = {k: v for k, v in weights.items() if k in current and current[k].shape == v.shape}
            fresh = sorted(set(current) - set(weights))
            if not weights:
                raise CheckpointError(f"{checkpoint.directory}: no tensor of this checkpoint fits the configured model")
            current.update(weights)
            weights = current
        try:
            self.codec.load_state_dict(weights)
        except RuntimeError as exc:
            raise CheckpointError(f"{checkpoint.directory}: weights do not fit the configured model "
                                  f"({' '.join(str(exc).split())[:300]}; --init-partial loads the tensors that fit)") from None
        warm = self._warm_start_subframe_head(checkpoint.weights, fresh) if partial else []
        fresh = [k for k in fresh if k not in warm]
        return {"source": str(checkpoint.directory), "partial": partial, "fresh": fresh, "warm_started": warm,
                "loaded": sorted(k for k in weights if k not in fresh and k not in warm)}

    def _warm_start_subframe_head(self, source: dict[str, torch.Tensor], fresh: list[str]) -> list[str]:
        """A sub-frame Vocos head left fresh by a partial load starts from the source's single-frame
        head (:meth:`StreamingISTFTHead.warm_start_from_single_frame`) when their shapes correspond."""
        head = getattr(self.codec.decoder, "head", None)
        names = ["decoder.head.proj.weight", "decoder.head.proj.bias"]
        if not isinstance(head, StreamingISTFTHead) or head.subframes < 2 or not set(names) <= set(fresh) & set(source):
            return []
        try:
            head.warm_start_from_single_frame(source[names[0]].float(), source[names[1]].float())
        except ValueError:
            return []
        return names

    def _load_resume(self) -> None:
        checkpoint = load_training_checkpoint(self.out, need_state=True)
        saved, current = checkpoint.config.get("config"), to_dict(self.codec.config)
        if saved != current:
            diff = sorted(k for k in set(saved) | set(current) if saved.get(k) != current.get(k))
            raise CheckpointError(f"{checkpoint.directory}: trained with a different model config (differs in {diff})")
        self._load_weights(checkpoint.directory)
        state = checkpoint.state
        try:
            self.optimizer.load_state_dict(state["optimizer"])
            self.scheduler.load_state_dict(state["scheduler"])
            if self.discriminators is not None:
                self.discriminators.load_state_dict(state["discriminators"])
                self.disc_optimizer.load_state_dict(state["disc_optimizer"])
                self.disc_scheduler.load_state_dict(state["disc_scheduler"])
            self.objective.combiner.load_state_dict(state["balancer"])
            if self.semantic is not None:
                self.semantic.heads.load_state_dict(state["semantic"])
            self.loader.load_state_dict(state["data"])
            self.nonfinite_in_a_row = int(state["nonfinite_in_a_row"])
            self.nonfinite_total = int(state["nonfinite_total"])
            set_rng_state(state["rng"])
        except (KeyError, ValueError, RuntimeError, TypeError) as exc:
            raise CheckpointError(f"{checkpoint.directory}: trainer state does not fit this run "
                                  f"({type(exc).__name__}: {' '.join(str(exc).split())[:300]})") from None
        self.step = int(state["step"])
        self.resumed_from = str(checkpoint.directory)

    def _state(self) -> dict:
        state = {
            "step": self.step,
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "balancer": self.objective.combiner.state_dict(),
            "data": self.loader.state_dict(),
            "nonfinite_in_a_row": self.nonfinite_in_a_row,
            "nonfinite_total": self.nonfinite_total,
            "rng": rng_state(),
            "world_size": self.ctx.world_size,
        }
        if self.semantic is not None:
            state["semantic"] = self.semantic.heads.state_dict()
        if self.discriminators is not None:
            state["discriminators"] = self.discriminators.state_dict()
            state["disc_optimizer"] = self.disc_optimizer.state_dict()
            state["disc_scheduler"] = self.disc_scheduler.state_dict()
        return state

    # --- one step ----------------------------------------------------------------------
    def _autocast(self) -> contextlib.AbstractContextManager:
        if self.config.precision == "bf16" and self.device.type == "cuda":
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def _step(self, batch: dict) -> dict[str, float] | None:
        """One optimiser step (see the module docstring); metrics, or None if it was skipped."""
        x = batch["audio"].to(self.device, non_blocking=True)
        band_limit = batch["band_limit_hz"].to(self.device) if self.config.data.respect_band_limit else None
        gan = self.use_gan and self.step >= self.config.adversarial_start_step
        self.optimizer.zero_grad(set_to_none=True)
        with self._autocast():
            out = self.model(x)
        y = out["audio"].float()
        target = out.get("target", x)  # the input, delayed by the decoder's declared delay if any
        if gan:
            self.discriminators.requires_grad_(False)
        with self._autocast():
            losses = self.objective.reconstruction_losses(y, target, self.discriminators if gan else None,
                                                          band_limit_hz=band_limit)
        if gan:
            self.discriminators.requires_grad_(True)
        losses = {k: v.float() for k, v in losses.items()}
        if self.loss_hook is not None:
            losses = self.loss_hook(self.step + 1, losses)
        aux = self.objective.bottleneck_loss(out["losses"])
        semantic: dict[str, torch.Tensor] = {}
        if self.semantic is not None:
            with self._autocast():
                semantic = {k: v.float() for k, v in self.semantic.losses(x, out).items()}
            weighted = self.semantic.weighted(semantic)
            aux = weighted if aux is None else aux + weighted
        disc_loss = None
        if gan:
            self.disc_optimizer.zero_grad(set_to_none=True)
            with self._autocast():
                disc_loss = self.objective.discriminator_loss(self.disc_model, target, y).float()
        local_bad = not _finite(aux, disc_loss, *losses.values(), *semantic.values())
        any_bad, self.stop.requested = self.ctx.any([local_bad, self.stop.requested])
        if any_bad:
            # Every rank still runs one backward per DDP forward, so no rank waits in a collective.
            torch.autograd.backward([y], [torch.zeros_like(y)])
            if disc_loss is not None:
                (disc_loss * 0).backward()
            return self._skip("loss")
        metrics = self.objective.generator_backward(losses, y, aux)
        clip = self.config.optim.grad_clip or math.inf
        grad_norm = torch.nn.utils.clip_grad_norm_(self.codec.parameters(), clip)
        head_norm = None
        if self.semantic is not None:  # its heads are outside DDP: average their gradients here
            heads = [p for p in self.semantic.heads.parameters() if p.grad is not None]
            if self.ctx.distributed:
                for p in heads:
                    p.grad.copy_(self.ctx.mean(p.grad))
            head_norm = torch.nn.utils.clip_grad_norm_(heads, clip) if heads else None
        disc_norm = None
        if disc_loss is not None:
            disc_loss.backward()
            disc_norm = torch.nn.utils.clip_grad_norm_(self.discriminators.parameters(), clip)
        if not _finite(grad_norm, head_norm, disc_norm):  # norms are all-reduced: every rank agrees
            return self._skip("gradient")
        self.optimizer.step()
        if disc_loss is not None:
            self.disc_optimizer.step()
        self.codec.bottleneck.sync_distributed()
        self._advance_schedulers()
        self.nonfinite_in_a_row = 0
        metrics = {k: v for k, v in metrics.items() if not k.startswith("grad_norm/")}
        metrics.update({f"loss/{k}": float(v.detach()) for k, v in {**out["losses"], **semantic}.items()})
        metrics["loss"] = self.objective.total(losses, aux)
        metrics["grad_norm"] = float(grad_norm)
        if head_norm is not None:
            metrics["grad_norm/semantic"] = float(head_norm)
        if disc_loss is not None:
            metrics.update({"loss/discriminator": float(disc_loss.detach()), "grad_norm/discriminator": float(disc_norm)})
        for name, value in out["stats"].items():
            value = torch.as_tensor(value, dtype=torch.float32).detach().reshape(-1)
            metrics[f"stats/{name}"] = float(value.mean())
        return metrics

    def _advance_schedulers(self) -> None:
        with warnings.catch_warnings():
            # skipped steps and the GAN warm-up advance a scheduler whose optimiser did not step: intended
            warnings.filterwarnings("ignore", message="Detected call of")
            self.scheduler.step()
            if self.disc_scheduler is not None:
                self.disc_scheduler.step()

    def _skip(self, what: str) -> None:
        self.optimizer.zero_grad(set_to_none=True)
        if self.disc_optimizer is not None:
            self.disc_optimizer.zero_grad(set_to_none=True)
        for module in self.codec.modules():
            if hasattr(module, "_clear_step"):
                module._clear_step()  # drop this step's codebook statistics
        self._advance_schedulers()
        self.nonfinite_in_a_row += 1
        self.nonfinite_total += 1
        self.logger.info(f"step {self.step + 1}: non-finite {what}, step skipped "
                         f"({self.nonfinite_in_a_row} in a row, {self.nonfinite_total} in total)")
        if self.nonfinite_in_a_row >= self.config.max_nonfinite:
            raise NonFiniteLossError(
                f"{self.nonfinite_in_a_row} consecutive steps with a non-finite {what} (limit max_nonfinite="
                f"{self.config.max_nonfinite}); training diverged at step {self.step + 1}. The last checkpoint "
                f"is intact: lower optim.lr, raise warmup or check the data, then --resume."
            )
        return None

    # --- the loop ----------------------------------------------------------------------
    def _write_run_json(self) -> None:
        info = {"config": to_dict(self.config), "data": self.data_sources, "world_size": self.ctx.world_size,
                "start_step": self.step, "resumed_from": self.resumed_from,
                "initialised_from": {k: v for k, v in (self.initialised_from or {}).items() if k != "loaded"} or None,
                "environment": environment()}
        name = "run.json" if self.step == 0 else f"run.resume_{self.step:06d}.json"
        with atomic_path(self.out / name) as tmp:
            tmp.write_text(json.dumps(info, indent=2, default=str))

    def save_checkpoint(self) -> Path | None:
        """Checkpoint the current step (rank 0 writes; every rank waits for it)."""
        path = None
        if self.ctx.is_main:
            path = save_training_checkpoint(
                self.out, self.step, self.codec, self._state(), self.config.keep_last,
                extra={"training": {"step": self.step, "run": str(self.out.resolve())}},
                discriminators=self.discriminators,
            )
        self.ctx.barrier()
        return path

    def evaluate(self) -> dict[str, float]:
        """Held-out metrics on rank 0 (see :mod:`audiolatent.train.evaluation`); {} elsewhere."""
        if self.eval_set is None:
            return {}
        samples = self.out / "samples" / f"step_{self.step:06d}" if self.config.n_samples else None
        batch = self.config.data.batch_size if self.config.data.eval_crop_seconds else 1
        metrics = evaluate(self.codec, self.eval_set, self.device, batch, self.config.n_samples, samples,
                           respect_band_limit=self.config.data.respect_band_limit)
        self.logger.log(self.step, metrics, split=self.config.data.eval_split or "all")  # the split it scored
        return metrics

    def fit(self) -> dict:
        """Train until ``config.steps`` (or a stop signal). Returns ``{"step", "checkpoint",
        "stopped_early", "metrics"}`` (last logged training metrics)."""
        self.out.mkdir(parents=True, exist_ok=True)
        if self.ctx.is_main:
            self._write_run_json()
        self.stop.__enter__()
        cfg, last, checkpoint = self.config, {}, None
        window_start, window_steps = time.perf_counter(), 0
        try:
            while self.step < cfg.steps:
                metrics = self._step(self.loader.next())
                self.step += 1
                window_steps += 1
                elapsed = time.perf_counter() - window_start
                speed = window_steps / elapsed if elapsed > 0 else 0.0
                if metrics is not None:
                    last = metrics
                    self.logger.advance(metrics["loss"], speed)
                if self.step % cfg.log_every == 0 or self.step == cfg.steps:
                    record = {**last, "lr": self.scheduler.get_last_lr()[0], "steps_per_second": speed,
                              "nonfinite_steps": self.nonfinite_total, "skipped": float(metrics is None)}
                    self.logger.log(self.step, record)
                    window_start, window_steps = time.perf_counter(), 0
                if cfg.eval_every and self.step % cfg.eval_every == 0:
                    self.evaluate()
                stopping = self.stop.requested
                if stopping or self.step == cfg.steps or (cfg.checkpoint_every and self.step % cfg.checkpoint_every == 0):
                    checkpoint = self.save_checkpoint()
                if stopping:
                    self.logger.info(f"stopped at step {self.step}; resume with --resume")
                    break
        finally:
            self.stop.__exit__()
            self.logger.close()
        return {"step": self.step, "checkpoint": str(checkpoint) if checkpoint else None,
                "stopped_early": self.step < cfg.steps, "metrics": last}

    def close(self) -> None:
        """Leave the process group this trainer created (if any)."""
        self.ctx.close()
