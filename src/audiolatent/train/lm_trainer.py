"""Train a second-stage LM on a tokenizer's latents; save and load LM checkpoints.

``LMTrainer(config, tokenizer, data, out).fit()``:

1. encodes the ``train`` (and, on rank 0, the ``test``) split of ``data`` with the tokenizer,
   through the on-disk cache of :mod:`audiolatent.lm.latent_cache`, and joins the train items
   end to end into one sequence ``[K|D, T_total]``;
2. each optimiser step draws ``data.batch_size`` random windows ``[B, K|D, window_frames]``
   per rank. The windows are a pure function of ``(seed, step, rank)``, so a resumed run sees
   the batches an uninterrupted one would. Continuous latents are standardised per dimension
   with train-split statistics (stored in the checkpoint);
3. loss: ``TokenLM.loss`` (mean nats per token) or ``ContinuousLM.loss`` (head loss; nats per
   frame for Gaussian/GMM heads); AdamW, clipping, the codec trainer's LR schedules
   (:func:`~audiolatent.train.trainer.lr_multiplier`). Under ``torchrun`` the loss module is
   wrapped in DDP; one all-reduce per step agrees on "non-finite loss: skip" and "stop".
4. rank 0 logs to ``OUT/metrics.jsonl`` (+ TensorBoard) every ``log_every`` steps, evaluates the
   held-out split every ``eval_every`` (:func:`~audiolatent.lm.probe.evaluate_token_probe`:
   ``eval/bits_per_second``; :func:`~audiolatent.lm.probe.evaluate_continuous_probe`:
   ``eval/nll_per_second`` in nats/s of the latent's own units, ``eval/predictive_nats_per_second``
   (scale-free) and ``eval/r2``) and checkpoints
   every ``checkpoint_every`` steps, at the end, and on SIGTERM/Ctrl-C.

Checkpoint layout (atomic directory, ``OUT/latest`` pointer as for codecs)::

    OUT/checkpoints/step_000300/lm_config.yaml     # LMTrainConfig, tokenizer reference, latent shape
    OUT/checkpoints/step_000300/model.safetensors  # LM weights (+ latent_mean/latent_std, continuous)
    OUT/checkpoints/step_000300/trainer_state.pt   # optimiser, scheduler, RNG, step

:func:`load_lm` reads one back for ``audiolatent generate``. Exact resume: ``N`` steps, then
``--resume`` to ``2N`` gives the losses of ``2N`` straight steps (CPU, float precision).

Note on layering: this module uses the codec trainer's engine pieces (checkpoint helpers, run
log, distributed context, schedules) from :mod:`audiolatent.train`.
"""

from __future__ import annotations

import contextlib
import json
import math
import random
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from audiolatent.core.atomic import atomic_dir, atomic_path
from audiolatent.core.config import from_dict, load_yaml, save_yaml, to_dict
from audiolatent.core.errors import AudioLatentError, CheckpointError, ConfigError
from audiolatent.core.registry import load_tokenizer
from audiolatent.lm.errors import LMError
from audiolatent.train.lm_config import LMTrainConfig
from audiolatent.lm.continuous import ContinuousLM
from audiolatent.lm.latent_cache import encode_corpus, tokenizer_fingerprint
from audiolatent.lm.probe import ProbeResult, evaluate_continuous_probe, evaluate_token_probe
from audiolatent.lm.token_lm import TokenLM
from audiolatent.train.checkpointing import (LATEST_FILE, TRAINER_STATE_FILE, checkpoint_name, prepare_run_folder,
                                             resolve_checkpoint, rng_state, set_rng_state)
from audiolatent.train.distributed import DistributedContext
from audiolatent.train.signals import StopSignals
from audiolatent.train.run_log import RunLogger
from audiolatent.train.trainer import NonFiniteLossError, lr_multiplier

__all__ = ["LMTrainer", "LoadedLM", "load_lm", "build_lm", "load_lm_tokenizer", "LM_CONFIG_FILE", "LM_WEIGHTS_FILE"]

LM_CONFIG_FILE = "lm_config.yaml"


def _is_lm_checkpoint(path: Path) -> bool:
    """An LM step directory (or an empty one) may be replaced; nothing else."""
    return path.is_dir() and (not any(path.iterdir()) or (path / LM_CONFIG_FILE).is_file())
LM_WEIGHTS_FILE = "model.safetensors"


def build_lm(config: LMTrainConfig, codebook_sizes: tuple[int, ...] | None, latent_dim: int) -> nn.Module:
    """The ``TokenLM`` / ``ContinuousLM`` that ``config.model`` describes, for this latent."""
    m = config.model
    if m.kind == "token":
        return TokenLM(codebook_sizes, pattern=m.pattern, dim=m.dim, num_layers=m.layers, num_heads=m.heads,
                       dim_feedforward=m.dim_feedforward, context=m.context, depth_dim=m.depth_dim,
                       depth_layers=m.depth_layers, depth_heads=m.depth_heads)
    return ContinuousLM(latent_dim, m.head, dim=m.dim, num_layers=m.layers, num_heads=m.heads,
                        dim_feedforward=m.dim_feedforward, context=m.context, head_kwargs=m.head_kwargs or None)


def check_compatible(kind: str, discrete: bool, tokenizer: str) -> None:
    """LMError unless a ``kind`` model can learn a (``discrete`` or continuous) latent."""
    if kind == "continuous" and discrete:
        raise LMError(f"a continuous LM (model.kind=continuous) cannot model the discrete codes of {tokenizer!r}; "
                      f"use model.kind=token (e.g. --model token-small)")
    if kind == "token" and not discrete:
        raise LMError(f"a token LM (model.kind=token) cannot model the continuous latent of {tokenizer!r}; "
                      f"use model.kind=continuous (e.g. --model continuous-small)")


def load_lm_tokenizer(reference: str, device: str | torch.device | None = None):
    """``load_tokenizer`` with a one-line LMError naming the reference when it cannot be built."""
    try:
        return load_tokenizer(reference, device=str(device) if device is not None else None)
    except AudioLatentError as exc:
        raise LMError(f"tokenizer {reference!r} cannot be loaded ({exc})") from None


class _Loss(nn.Module):
    """``forward(x) -> scalar loss``, so DDP sees the whole LM computation as one forward."""

    def __init__(self, lm: nn.Module) -> None:
        super().__init__()
        self.lm = lm

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lm.loss(x).loss


@dataclass
class LoadedLM:
    """An LM checkpoint read by :func:`load_lm`.

    ``model`` is in eval mode; ``mean``/``std`` (``[D]``) standardise continuous latents
    (None for token LMs); ``tokenizer`` is the name or checkpoint path it was trained on.
    """

    model: nn.Module
    config: LMTrainConfig
    tokenizer: str
    tokenizer_config_hash: str
    frame_rate: float
    codebook_sizes: tuple[int, ...] | None
    latent_dim: int
    mean: torch.Tensor | None
    std: torch.Tensor | None
    directory: Path
    step: int

    @property
    def is_discrete(self) -> bool:
        return self.codebook_sizes is not None


def load_lm(path: str | Path, device: str | torch.device = "cpu") -> LoadedLM:
    """Read an LM checkpoint: a ``step_*`` directory or a run folder (its ``latest``).

    Raises:
        CheckpointError: no such folder, or missing/corrupt files (one line, naming the file).
    """
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"{path}: no such LM checkpoint or run folder")
    directory = path if (path / LM_CONFIG_FILE).is_file() else resolve_checkpoint(path)
    cfg_path, weights_path = directory / LM_CONFIG_FILE, directory / LM_WEIGHTS_FILE
    for required in (cfg_path, weights_path):
        if not required.is_file():
            raise CheckpointError(f"{directory}: not an LM checkpoint (no {required.name})")
    try:
        data = load_yaml(cfg_path)
        config = from_dict(LMTrainConfig, data["config"], where=str(cfg_path))
        latent, tok = data["latent"], data["tokenizer"]
        weights = load_file(str(weights_path))
    except (ConfigError, KeyError, TypeError) as exc:
        raise CheckpointError(f"{cfg_path}: corrupt LM config ({exc})") from None
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"{weights_path}: corrupt weights file ({' '.join(str(exc).split())})") from None
    sizes = tuple(latent["codebook_sizes"]) if latent.get("codebook_sizes") else None
    model = build_lm(config, sizes, int(latent["latent_dim"]))
    mean, std = weights.pop("latent_mean", None), weights.pop("latent_std", None)
    try:
        model.load_state_dict(weights)
    except RuntimeError as exc:
        detail = " ".join(str(exc).split())[:200]
        raise CheckpointError(f"{weights_path}: weights do not fit {cfg_path.name} ({detail})") from None
    return LoadedLM(model.to(device).eval(), config, str(tok["reference"]), str(tok.get("config_hash", "")),
                    float(latent["frame_rate"]), sizes, int(latent["latent_dim"]), mean, std, directory,
                    int(data.get("training", {}).get("step", 0)))


class LMTrainer:
    """Train an LM on ``tokenizer``'s latents of ``data`` into run folder ``out``.

    Args:
        config: the run (:func:`~audiolatent.train.lm_config.load_lm_config`).
        tokenizer: registered name or tokenizer checkpoint directory.
        data: manifests, folders or files; each is encoded (cached) and their splits pooled.
        out: run folder (checkpoints, latest, metrics.jsonl, run.json).
        resume: continue from ``out``'s latest checkpoint.
        device: torch device; None = ``cuda:LOCAL_RANK`` if available, else CPU.
        progress: tqdm bar (None: when stderr is a terminal).
    """

    def __init__(self, config: LMTrainConfig, tokenizer: str, data: list[str], out: str | Path, *,
                 resume: bool = False, device: str | None = None, progress: bool | None = None,
                 time_limit_s: float | None = None) -> None:
        self.config, self.out, self.data_sources = config, Path(out), [str(d) for d in data]
        self.ctx = DistributedContext(device)
        cleaned = prepare_run_folder(self.out, resume, clean=self.ctx.is_main)
        self.device = self.ctx.device
        path = Path(tokenizer)
        self.tokenizer_reference = str(path.resolve()) if path.exists() else str(tokenizer)
        self.tokenizer = load_lm_tokenizer(self.tokenizer_reference, self.device)
        with torch.inference_mode():  # fail before encoding a corpus: one frame says discrete or continuous
            one_frame = self.tokenizer.encode(torch.zeros(1, self.tokenizer.channels, self.tokenizer.hop_length))
        check_compatible(config.model.kind, one_frame.is_discrete, tokenizer)
        notices: list[str] = []
        train, self.test_items = self._encode(notices)
        # seed every RNG after encoding: a run that encoded the corpus and one that read it from
        # the cache must hold the same RNG states from here on (resume is then exact)
        random.seed(config.seed)
        np.random.seed(config.seed)
        torch.manual_seed(config.seed)
        self.frame_rate, self.codebook_sizes = train.frame_rate, train.codebook_sizes
        sequence = torch.cat(train.items, dim=-1)
        self.latent_dim = sequence.shape[0]
        self.mean = self.std = None
        if not train.is_discrete:
            self.mean, self.std = sequence.mean(dim=-1), sequence.std(dim=-1).clamp_min(1e-6)
            sequence = (sequence - self.mean[:, None]) / self.std[:, None]
        self.window = min(config.data.window_frames, sequence.shape[-1])
        if self.window < config.data.window_frames:
            notices.append(f"only {sequence.shape[-1]} train frames: windows shortened to {self.window} frames")
        self.sequence = sequence.to(self.device)
        self.model = build_lm(config, self.codebook_sizes, self.latent_dim).to(self.device)
        opt = config.optim
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=opt.lr, betas=tuple(opt.betas),
                                           weight_decay=opt.weight_decay, eps=opt.eps)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, lr_multiplier(config.schedule, config.steps))
        self.step, self.nonfinite_in_a_row, self.nonfinite_total, self.resumed_from = 0, 0, 0, None
        if resume:
            self._load_resume()
        self.logger = RunLogger(self.out, self.ctx.is_main, config.steps, self.step, progress)
        self.stop = StopSignals(self.logger, lambda: self.step, time_limit_s)
        if cleaned:
            notices.append(f"removed {len(cleaned)} temporary entr{'y' if len(cleaned) == 1 else 'ies'} a stopped run left: "
                           + ", ".join(p.name for p in cleaned[:5]))
        if self.resumed_from:
            notices.append(f"resumed from step {self.step} ({self.resumed_from})")
        n_params = sum(p.numel() for p in self.model.parameters())
        notices.append(f"{config.model.kind} LM ({n_params / 1e6:.2f}M parameters) on {self.tokenizer.name}: "
                       f"{len(train.items)} train files, {train.seconds / 60:.1f} min, {train.n_encoded} encoded, "
                       f"{train.n_cached} from the cache; world size {self.ctx.world_size}")
        for notice in notices:
            self.logger.info(notice)
        self.loss_module: nn.Module = _Loss(self.model)
        if self.ctx.distributed:
            ids = [self.device] if self.device.type == "cuda" else None
            self.loss_module = DistributedDataParallel(self.loss_module, device_ids=ids, find_unused_parameters=True)

    # --- setup -------------------------------------------------------------------------
    def _encode(self, notices: list[str]):
        """Train corpus (all ranks, rank 0 encodes first) and held-out items (rank 0 only)."""
        cfg = self.config.data
        pooled, test_items = None, []
        for first in (True, False):  # rank 0 fills the cache, then the others read it
            if first == self.ctx.is_main:
                for source in self.data_sources:
                    part = encode_corpus(self.tokenizer, source, cfg.train_split, cfg.cache_dir)
                    if pooled is None:
                        pooled = part
                    else:
                        pooled.items += part.items
                        pooled.n_encoded += part.n_encoded
                        pooled.n_cached += part.n_cached
            if first:
                self.ctx.barrier()
        if self.ctx.is_main and self.config.eval_every > 0 and cfg.eval_split:
            for source in self.data_sources:
                try:
                    test_items += encode_corpus(self.tokenizer, source, cfg.eval_split, cfg.cache_dir,
                                                max_items=cfg.eval_max_items).items
                except AudioLatentError as exc:
                    notices.append(f"no held-out evaluation for {source} ({exc})")
        return pooled, test_items

    def _reference(self) -> dict:
        return {"reference": self.tokenizer_reference, "config_hash": self.tokenizer.config_hash,
                "fingerprint": tokenizer_fingerprint(self.tokenizer)}

    def _load_resume(self) -> None:
        directory = resolve_checkpoint(self.out)
        loaded = load_lm(directory, self.device)
        state_path = directory / TRAINER_STATE_FILE
        if not state_path.is_file():
            raise CheckpointError(f"{directory}: incomplete checkpoint, no {TRAINER_STATE_FILE}")
        if to_dict(loaded.config.model) != to_dict(self.config.model):
            raise CheckpointError(f"{directory}: trained with a different model config; resume with the same --model")
        saved_tok = load_yaml(directory / LM_CONFIG_FILE)["tokenizer"].get("fingerprint")
        if saved_tok != self._reference()["fingerprint"]:
            raise CheckpointError(f"{directory}: trained on another tokenizer ({loaded.tokenizer})")
        try:
            state = torch.load(state_path, map_location="cpu", weights_only=True)
            self.model.load_state_dict(loaded.model.state_dict())
            self.optimizer.load_state_dict(state["optimizer"])
            self.scheduler.load_state_dict(state["scheduler"])
            self.nonfinite_in_a_row = int(state["nonfinite_in_a_row"])
            self.nonfinite_total = int(state["nonfinite_total"])
            set_rng_state(state["rng"])
            self.step = int(state["step"])
        except Exception as exc:  # torch raises many types for a damaged or foreign state
            raise CheckpointError(f"{state_path}: trainer state does not fit this run "
                                  f"({type(exc).__name__}: {' '.join(str(exc).split())[:200]})") from None
        self.resumed_from = str(directory)

    # --- checkpoints -------------------------------------------------------------------
    def save_checkpoint(self) -> Path | None:
        """Write ``OUT/checkpoints/step_<step>/`` atomically on rank 0, move ``latest``, prune."""
        path = None
        if self.ctx.is_main:
            weights = {k: v.detach().cpu().contiguous().clone() for k, v in self.model.state_dict().items()}
            if not all(torch.isfinite(v).all() for v in weights.values() if v.is_floating_point()):
                raise FloatingPointError("refusing to write a checkpoint: a model weight is not finite")
            if self.mean is not None:
                weights["latent_mean"], weights["latent_std"] = self.mean.cpu().clone(), self.std.cpu().clone()
            from audiolatent import __version__

            header = {"audiolatent_version": __version__, "kind": "lm", "config": to_dict(self.config),
                      "tokenizer": self._reference(),
                      "latent": {"frame_rate": self.frame_rate, "latent_dim": self.latent_dim,
                                 "codebook_sizes": list(self.codebook_sizes) if self.codebook_sizes else None,
                                 "sample_rate": self.tokenizer.sample_rate, "hop_length": self.tokenizer.hop_length},
                      "training": {"step": self.step, "run": str(self.out.resolve())}}
            state = {"step": self.step, "optimizer": self.optimizer.state_dict(),
                     "scheduler": self.scheduler.state_dict(),
                     "nonfinite_in_a_row": self.nonfinite_in_a_row, "nonfinite_total": self.nonfinite_total,
                     "rng": rng_state(), "world_size": self.ctx.world_size}
            root, name = self.out / "checkpoints", checkpoint_name(self.step)
            with atomic_dir(root / name, may_replace=_is_lm_checkpoint) as tmp:
                save_file(weights, str(tmp / LM_WEIGHTS_FILE), metadata={"kind": "lm"})
                save_yaml(header, tmp / LM_CONFIG_FILE)
                torch.save(state, tmp / TRAINER_STATE_FILE)
            with atomic_path(self.out / LATEST_FILE) as tmp:
                tmp.write_text(name + "\n")
            old = sorted(p for p in root.glob("step_*") if p.is_dir() and p.name != name)
            for stale in old[: max(0, len(old) + 1 - self.config.keep_last)]:
                shutil.rmtree(stale, ignore_errors=True)
            path = root / name
        self.ctx.barrier()
        return path

    # --- one step ----------------------------------------------------------------------
    def _batch(self, step: int) -> torch.Tensor:
        """``[B, K|D, window]`` windows of the train sequence for (seed, step, rank)."""
        seed = (self.config.seed * 1_000_003 + step) * 1_009 + self.ctx.rank
        generator = torch.Generator().manual_seed(seed)
        starts = torch.randint(0, self.sequence.shape[-1] - self.window + 1, (self.config.data.batch_size,),
                               generator=generator)
        return torch.stack([self.sequence[:, s : s + self.window] for s in starts.tolist()])

    def _autocast(self) -> contextlib.AbstractContextManager:
        if self.config.precision == "bf16" and self.device.type == "cuda":
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def _step(self) -> dict[str, float] | None:
        """One optimiser step; its metrics, or None when it was skipped (non-finite)."""
        self.model.train()
        self.optimizer.zero_grad(set_to_none=True)
        with self._autocast():
            loss = self.loss_module(self._batch(self.step)).float()
        bad, self.stop.requested = self.ctx.any([not bool(torch.isfinite(loss)), self.stop.requested])
        if bad:
            torch.autograd.backward(loss, torch.zeros_like(loss))  # every rank joins DDP's reduction
            return self._skip()
        loss.backward()
        grad_norm = nn.utils.clip_grad_norm_(self.model.parameters(), self.config.optim.grad_clip or math.inf)
        if not torch.isfinite(grad_norm):  # identical on every rank after DDP's all-reduce
            return self._skip()
        self.optimizer.step()
        self.scheduler.step()
        self.nonfinite_in_a_row = 0
        metrics = {"loss": float(loss.detach()), "grad_norm": float(grad_norm)}
        if self.config.model.kind == "token":
            metrics["bits_per_token"] = metrics["loss"] / math.log(2)
        return metrics

    def _skip(self) -> None:
        self.optimizer.zero_grad(set_to_none=True)
        self.scheduler.step()
        self.nonfinite_in_a_row += 1
        self.nonfinite_total += 1
        self.logger.info(f"step {self.step + 1}: non-finite loss or gradient, step skipped")
        if self.nonfinite_in_a_row >= self.config.max_nonfinite:
            raise NonFiniteLossError(f"{self.nonfinite_in_a_row} consecutive non-finite steps; training diverged at "
                                     f"step {self.step + 1}. Lower optim.lr, then --resume.")
        return None

    def evaluate(self) -> dict[str, float]:
        """Held-out metrics on rank 0 (see the module docstring); {} without a test split."""
        if not self.test_items:
            return {}
        probe = ProbeResult(self.model, self.frame_rate, self.window, mean=self.mean, std=self.std)
        if self.config.model.kind == "token":
            r = evaluate_token_probe(probe, self.test_items)
            metrics = {"eval/bits_per_second": r["bits_per_second"], "eval/bits_per_frame": r["bits_per_frame"],
                       "eval/unigram_bits_per_second": r["unigram_bits_per_second"],
                       "eval/ratio_to_unigram": r["ratio_to_unigram"]}
        else:
            r = evaluate_continuous_probe(probe, self.test_items)
            metrics = {"eval/r2": r["r2"]}
            if r["nll_per_second"] is not None:
                metrics.update({"eval/nll_per_second": r["nll_per_second"], "eval/nll_per_frame": r["nll_per_frame"],
                                "eval/predictive_nats_per_second": r["predictive_nats_per_second"]})
        self.logger.log(self.step, metrics, split=self.config.data.eval_split or "all")  # the split it scored
        return metrics

    # --- the loop ----------------------------------------------------------------------
    def fit(self, stop_after: int | None = None) -> dict:
        """Train to ``config.steps`` (or ``stop_after`` steps, or a stop signal), checkpointing at the end.

        Returns ``{"step", "checkpoint", "stopped_early", "metrics", "eval"}``.
        """
        cfg, last, evaluation, checkpoint = self.config, {}, {}, None
        end = min(cfg.steps, stop_after) if stop_after is not None else cfg.steps
        if self.ctx.is_main:
            name = "run.json" if self.step == 0 else f"run.resume_{self.step:06d}.json"
            info = {"config": to_dict(cfg), "tokenizer": self._reference(), "data": self.data_sources,
                    "world_size": self.ctx.world_size, "start_step": self.step, "resumed_from": self.resumed_from}
            with atomic_path(self.out / name) as tmp:
                tmp.write_text(json.dumps(info, indent=2, default=str))
        self.stop.__enter__()
        window_start, window_steps = time.perf_counter(), 0
        try:
            while self.step < end:
                metrics = self._step()
                self.step += 1
                window_steps += 1
                speed = window_steps / max(1e-9, time.perf_counter() - window_start)
                if metrics is not None:
                    last = metrics
                    self.logger.advance(metrics["loss"], speed)
                if self.step % cfg.log_every == 0 or self.step == end:
                    self.logger.log(self.step, {**last, "lr": self.scheduler.get_last_lr()[0],
                                                "steps_per_second": speed, "nonfinite_steps": self.nonfinite_total})
                    window_start, window_steps = time.perf_counter(), 0
                if self.ctx.is_main and cfg.eval_every and (self.step % cfg.eval_every == 0 or self.step == cfg.steps):
                    evaluation = self.evaluate()
                stopping = self.stop.requested or self.step == end
                if stopping or (cfg.checkpoint_every and self.step % cfg.checkpoint_every == 0):
                    checkpoint = self.save_checkpoint()
                if self.stop.requested:
                    self.logger.info(f"stopped at step {self.step}; resume with --resume")
                    break
        finally:
            self.stop.__exit__()
            self.logger.close()
        return {"step": self.step, "checkpoint": str(checkpoint) if checkpoint else None,
                "stopped_early": self.step < cfg.steps, "metrics": last, "eval": evaluation}

    def close(self) -> None:
        """Leave the process group this trainer created (if any)."""
        self.ctx.close()
