"""``audiolatent train``: train a codec from a training config (``configs/train/*.yaml``).

Hook: ``add_train_parser(sub)`` in :func:`audiolatent.cli.main.build_parser`. Works the same
under ``torchrun --nproc_per_node N -m audiolatent train ...`` (one process per device; rank 0
writes the run folder).

Exit status: 0 when training finished *or* was stopped by SIGTERM/Ctrl-C after writing a
checkpoint (resume with ``--resume``); 1 on a user error (bad config, data, checkpoint, or
training that diverged: ``max_nonfinite`` non-finite steps in a row).
"""

from __future__ import annotations

import argparse
import sys

__all__ = ["add_train_parser", "run_train", "outcome"]


def config_overrides(args: argparse.Namespace) -> list[str]:
    """The ``--set key=value`` overrides, plus ``steps=N`` from ``--steps``."""
    overrides = list(args.set or [])
    if args.steps is not None:
        overrides.append(f"steps={args.steps}")
    return overrides


def fit_and_close(trainer) -> dict:
    """``trainer.fit()``, leaving the process group whatever happens."""
    try:
        return trainer.fit()
    finally:
        trainer.close()


def run_train(args: argparse.Namespace) -> int:
    """Build the config and the :class:`~audiolatent.train.trainer.Trainer` from parsed args and fit."""
    from audiolatent.core.errors import ConfigError
    from audiolatent.train.config import load_train_config
    from audiolatent.train.trainer import Trainer

    if args.resume and args.init_from:
        raise ConfigError("--resume and --init-from exclude each other (resume restores the weights itself)")
    config = load_train_config(args.config, config_overrides(args))
    if args.init_partial and not args.init_from:
        raise ConfigError("--init-partial needs --init-from CKPT")
    trainer = Trainer(config, args.data, args.out, resume=args.resume, init_from=args.init_from, init_partial=args.init_partial,
                      device=args.device, progress=False if args.no_progress else None,
                      time_limit_s=None if args.time_limit is None else 60.0 * args.time_limit)
    start = trainer.step
    result = fit_and_close(trainer)
    if trainer.ctx.is_main:
        print(f"audiolatent train: {outcome(result, start, trainer.resumed_from, config.steps)}", file=sys.stderr)
    return 0


def outcome(result: dict, start: int, resumed_from: str | None, steps: int) -> str:
    """The last line of a training command: what was trained, or why nothing was."""
    if result["step"] == start and result["checkpoint"] is None and start >= steps:
        return (f"nothing to train: the run is already at step {start} and steps is {steps} (raise --steps to go on); "
                f"latest checkpoint {resumed_from}")
    state = "stopped" if result["stopped_early"] else "finished"
    origin = f" (resumed from step {start})" if resumed_from else ""
    return f"{state} at step {result['step']}{origin}; checkpoint {result['checkpoint']}"


def _minutes(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected minutes as a number, got {text!r}") from None
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be >= 0 minutes, got {text}")
    return value


def add_train_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``train`` command to ``subparsers`` (from ``parser.add_subparsers``)."""
    from audiolatent.cli.main import NameFriendlyHelpFormatter
    from audiolatent.core.config import packaged_configs

    p = subparsers.add_parser(
        "train",
        help="train a codec (one CPU process, or DDP under torchrun)",
        description="Train a neural codec from a training config. Writes OUT/checkpoints/step_*/ "
        "(loadable with `audiolatent info`), OUT/latest, OUT/metrics.jsonl, OUT/samples/, OUT/run.json. "
        "SIGTERM or Ctrl-C writes a checkpoint and exits 0. "
        "Multi-GPU: torchrun --nproc_per_node N -m audiolatent train ...",
        formatter_class=NameFriendlyHelpFormatter,
    )
    p.add_argument("config", help="training config YAML, or the name of a shipped recipe "
                   f"({', '.join(packaged_configs('train'))})")
    p.add_argument("--data", action="append", required=True, metavar="MANIFEST_OR_FOLDER",
                   help="manifest (.jsonl), folder or audio file; repeat to pool several")
    p.add_argument("--out", required=True, help="run folder (created if missing)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="override a config value, e.g. --set optim.lr=1e-4 --set model.bottleneck.n_codebooks=4")
    p.add_argument("--resume", action="store_true", help="continue exactly from OUT's latest checkpoint")
    p.add_argument("--init-from", default=None, metavar="CKPT",
                   help="start from these weights (checkpoint or run folder) with fresh optimisers at step 0")
    p.add_argument("--init-partial", action="store_true",
                   help="with --init-from: load only the tensors whose name and shape fit the configured model "
                   "(e.g. after changing the decoder head); the others start fresh and are listed. A sub-frame Vocos head "
                   "(decoder.subframes) starts from the checkpoint's single-frame head")
    p.add_argument("--steps", type=int, default=None, help="total optimiser steps (overrides the config)")
    p.add_argument("--time-limit", type=_minutes, default=None, metavar="MINUTES",
                   help="stop gracefully (checkpoint, resumable) after this much training wall time: races of equal "
                        "wall-clock time; the schedule still follows `steps`")
    p.add_argument("--device", default=None, help="torch device (default: cuda:LOCAL_RANK if available, else cpu)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="show full tracebacks on errors")
    p.set_defaults(func=run_train)
    return p


def main(argv: list[str] | None = None) -> int:
    """``python -m audiolatent.cli.train ...`` == ``audiolatent train ...`` (also under torchrun)."""
    from audiolatent.core.errors import AudioLatentError

    parser = argparse.ArgumentParser(prog="audiolatent")
    parser.add_argument("--debug", action="store_true", help=argparse.SUPPRESS)
    add_train_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["train", *(sys.argv[1:] if argv is None else argv)])
    try:
        return run_train(args)
    except AudioLatentError as exc:
        if args.debug:
            raise
        print(f"audiolatent: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
