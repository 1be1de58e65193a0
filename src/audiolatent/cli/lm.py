"""``audiolatent lm train`` and ``audiolatent generate``: second-stage LMs from the command line.

Hook: ``add_lm_parsers(sub)`` in :func:`audiolatent.cli.main.build_parser`.

* ``audiolatent lm train --tokenizer T --data D --model CONFIG --out DIR [--set k=v] [--resume] [--steps N]``
  trains a token LM (discrete tokenizers) or a continuous LM (continuous ones) on T's latents
  of D (encoded once, cached on disk; see :mod:`audiolatent.lm.latent_cache`). Works under
  ``torchrun --nproc_per_node N -m audiolatent lm train ...``.
* ``audiolatent generate --lm DIR --prompt AUDIO --seconds S OUT_AUDIO`` loads the LM and the
  tokenizer it was trained on, encodes the prompt, continues it by ``round(S x frame_rate)``
  frames (KV-cached sampling), decodes prompt + continuation and writes OUT_AUDIO atomically.
  The LM is conditioned on the last ``data.window_frames`` frames of the prompt (its training
  context); the whole prompt is decoded. Output length: the prompt rounded up to whole frames
  plus ``round(S x frame_rate)`` frames, in samples at the tokenizer's rate.

Exit status: 0 on success (also when training was stopped by SIGTERM/Ctrl-C after a
checkpoint); 1 with one line on stderr for a user error.
"""

from __future__ import annotations

import argparse
import sys

from audiolatent.cli.train import _minutes

__all__ = ["add_lm_parsers", "run_lm_train", "run_generate"]


def run_lm_train(args: argparse.Namespace) -> int:
    """Build the config and the :class:`~audiolatent.train.lm_trainer.LMTrainer` from parsed args and fit."""
    from audiolatent.cli.train import config_overrides, fit_and_close, outcome
    from audiolatent.train.lm_config import load_lm_config
    from audiolatent.train.lm_trainer import LMTrainer

    config = load_lm_config(args.model, config_overrides(args))
    trainer = LMTrainer(config, args.tokenizer, args.data, args.out, resume=args.resume, device=args.device,
                        progress=False if args.no_progress else None,
                        time_limit_s=None if args.time_limit is None else 60.0 * args.time_limit)
    start = trainer.step
    result = fit_and_close(trainer)
    if trainer.ctx.is_main:
        scores = " ".join(f"{k.removeprefix('eval/')}={v:.4g}" for k, v in (result.get("eval") or {}).items())
        print(f"audiolatent lm train: {outcome(result, start, trainer.resumed_from, config.steps)}"
              + (f"; held-out {scores}" if scores else ""), file=sys.stderr)
    return 0


def run_generate(args: argparse.Namespace) -> int:
    """Continue a prompt with an LM checkpoint and write prompt + continuation as audio."""
    import torch

    from audiolatent.core.audio import load_audio, save_audio
    from audiolatent.core.latent import Latent, Stream
    from audiolatent.lm.errors import LMError
    from audiolatent.lm.latent_cache import lm_view
    from audiolatent.train.lm_trainer import check_compatible, load_lm, load_lm_tokenizer

    if args.seconds < 0:
        raise LMError(f"--seconds must be >= 0, got {args.seconds}")
    if args.top_p is not None and not 0 < args.top_p <= 1:
        raise LMError(f"--top-p must be in (0, 1], got {args.top_p}")
    if args.top_k is not None and args.top_k < 1:
        raise LMError(f"--top-k must be >= 1, got {args.top_k}")
    from audiolatent.core.atomic import check_output_path

    check_output_path(args.output, args.prompt, what="output audio")
    lm = load_lm(args.lm, args.device or "cpu")
    tokenizer = load_lm_tokenizer(lm.tokenizer, args.device)
    if lm.tokenizer_config_hash and tokenizer.config_hash != lm.tokenizer_config_hash:
        raise LMError(f"{lm.directory}: trained on {lm.tokenizer!r} with config {lm.tokenizer_config_hash}, "
                      f"which now loads with config {tokenizer.config_hash}")
    audio, _ = load_audio(args.prompt, sample_rate=tokenizer.sample_rate, mono=tokenizer.channels == 1)
    if audio.shape[-1] < tokenizer.hop_length:
        raise LMError(f"{args.prompt}: prompt of {audio.shape[-1]} samples is shorter than one frame "
                      f"({tokenizer.hop_length} samples at {tokenizer.sample_rate} Hz)")
    generator = torch.Generator().manual_seed(args.seed)
    torch.manual_seed(args.seed)
    with torch.inference_mode():
        latent = tokenizer.encode(audio.to(tokenizer.device))
        if len(latent.streams) != 1:  # the tokens and durations of a variable-rate latent (else an LMError)
            out = _generate_variable_rate(args, lm, tokenizer, latent, lm_view(latent, lm.tokenizer)[0], generator)
            save_audio(args.output, out, tokenizer.sample_rate)
            return 0
        stream = latent.streams[0]
        check_compatible(lm.config.model.kind, stream.is_discrete, lm.tokenizer)
        prompt = stream.values[:, :, : int(stream.lengths[0])].to(args.device or "cpu")  # [1, K|D, Tp]
        context = prompt[..., -lm.config.data.window_frames:]
        n_new = round(args.seconds * stream.frame_rate)
        if stream.is_discrete:
            codes = lm.model.generate(context.long(), n_new, temperature=args.temperature, top_k=args.top_k,
                                      top_p=args.top_p, generator=generator)
            new = codes[..., context.shape[-1]:]
        else:
            if args.top_k is not None or args.top_p is not None:
                print("audiolatent generate: --top-k/--top-p apply to token LMs only; ignored", file=sys.stderr)
            mean, std = lm.mean.to(prompt)[None, :, None], lm.std.to(prompt)[None, :, None]
            z = lm.model.generate((context.float() - mean) / std, n_new, generator=generator)
            new = z[..., context.shape[-1]:] * std + mean
        values = torch.cat([prompt.to(new.dtype), new], dim=-1)
        n_frames = values.shape[-1]
        full = Latent([Stream(values, stream.frame_rate, stream.codebook_sizes, stream.name)], tokenizer.sample_rate,
                      tokenizer.name, tokenizer.config_hash,
                      torch.tensor([n_frames * tokenizer.hop_length]))
        out = tokenizer.decode(full)[0].float().cpu()
    save_audio(args.output, out, tokenizer.sample_rate)
    seconds = out.shape[-1] / tokenizer.sample_rate
    print(f"{args.output}: {seconds:.2f} s at {tokenizer.sample_rate} Hz ({prompt.shape[-1]} prompt + {n_new} "
          f"generated frames at {stream.frame_rate:g} frames/s)", file=sys.stderr)
    return 0


def _generate_variable_rate(args: argparse.Namespace, lm, tokenizer, latent, values, generator):
    """Continue a variable-rate latent (``values``: its streams stacked, :func:`lm_view`): sample
    (token, duration) segments until the sampled durations cover ``args.seconds``, then decode
    prompt + continuation (trimmed to that length)."""
    import torch

    from audiolatent.core.latent import Latent, Stream
    from audiolatent.lm.errors import LMError
    from audiolatent.train.lm_trainer import check_compatible

    streams = latent.streams
    names = [s.name for s in streams]
    check_compatible(lm.config.model.kind, True, lm.tokenizer)
    if "durations" not in names:
        raise LMError(f"{lm.tokenizer}: a variable-rate latent without a 'durations' stream (streams {names})")
    durations_row = sum(len(s.codebook_sizes) for s in streams[:names.index("durations")])
    device = args.device or "cpu"
    prompt = values[None].to(device)  # [1, K + 1, segments]
    base_rate = streams[0].frame_rate  # a duration code d is d + 1 frames at this rate
    prompt_frames = int((prompt[0, durations_row] + 1).sum())
    target = round(args.seconds * base_rate)
    window = lm.config.data.window_frames
    generated, covered = [], 0
    while covered < target:
        context = torch.cat([prompt, *generated], dim=-1)[..., -window:]
        block = max(1, min(16, target - covered))  # at least one frame per segment: never more than needed
        codes = lm.model.generate(context.long(), block, temperature=args.temperature, top_k=args.top_k,
                                  top_p=args.top_p, generator=generator)
        new = codes[..., context.shape[-1]:]
        lengths = (new[0, durations_row] + 1).cumsum(0)
        keep = min(int((lengths < target - covered).sum()) + 1, new.shape[-1])  # up to the segment reaching the target
        new = new[..., :keep]
        generated.append(new)
        covered += int(lengths[keep - 1])
    full = torch.cat([prompt, *generated], dim=-1)
    n = full.shape[-1]
    seconds = ((full[:, durations_row] + 1).double() / base_rate).float().cpu()
    parts, row = [], 0
    for s in streams:
        k = len(s.codebook_sizes)
        parts.append(Stream(full[:, row : row + k].to(s.values.device), s.frame_rate, s.codebook_sizes, s.name,
                            torch.tensor([n]), seconds))
        row += k
    n_samples = (prompt_frames + target) * tokenizer.hop_length
    out = tokenizer.decode(Latent(parts, tokenizer.sample_rate, tokenizer.name, tokenizer.config_hash,
                                  torch.tensor([n_samples])))[0].float().cpu()
    new_segments = n - prompt.shape[-1]
    print(f"{args.output}: {out.shape[-1] / tokenizer.sample_rate:.2f} s at {tokenizer.sample_rate} Hz "
          f"({prompt.shape[-1]} prompt + {new_segments} generated segments covering {covered} frames "
          f"at {base_rate:g} frames/s)", file=sys.stderr)
    return out


def add_lm_parsers(subparsers: argparse._SubParsersAction) -> None:
    """Add ``lm`` (with ``lm train``) and ``generate`` to ``subparsers`` (from ``parser.add_subparsers``)."""
    from audiolatent.cli.main import NameFriendlyHelpFormatter, tokenizer_names_epilog
    from audiolatent.core.config import packaged_configs

    lm = subparsers.add_parser("lm", help="second-stage language models over latents (lm train)",
                               description="Train second-stage LMs on a tokenizer's latents.")
    lm_sub = lm.add_subparsers(dest="lm_command", metavar="LM_COMMAND", required=True)
    p = lm_sub.add_parser(
        "train", help="train a token or continuous LM on a tokenizer's latents",
        description="Encode DATA with TOKENIZER (cached on disk) and train an LM on the latents. Writes "
        "OUT/checkpoints/step_*/ (lm_config.yaml, model.safetensors, trainer_state.pt), OUT/latest, "
        "OUT/metrics.jsonl (held-out bits/s or NLL/s, split = the eval split), OUT/run.json. SIGTERM or Ctrl-C writes a "
        "checkpoint and exits 0. Multi-GPU: torchrun --nproc_per_node N -m audiolatent lm train ...",
        epilog=tokenizer_names_epilog(), formatter_class=NameFriendlyHelpFormatter,
    )
    p.add_argument("--tokenizer", "-t", required=True, help="registered tokenizer name or checkpoint directory")
    p.add_argument("--data", action="append", required=True, metavar="MANIFEST_OR_FOLDER",
                   help="manifest (.jsonl), folder or audio file; repeat to pool several")
    p.add_argument("--model", required=True, metavar="CONFIG",
                   help=f"LM config YAML or packaged name ({', '.join(packaged_configs('lm'))})")
    p.add_argument("--out", required=True, help="run folder (created if missing)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="override a config value, e.g. --set model.dim=128 --set data.cache_dir=/tmp/cache")
    p.add_argument("--resume", action="store_true", help="continue exactly from OUT's latest checkpoint")
    p.add_argument("--steps", type=int, default=None, help="total optimiser steps (overrides the config)")
    p.add_argument("--time-limit", type=_minutes, default=None, metavar="MINUTES",
                   help="stop gracefully (checkpoint, resumable) after this much training wall time")
    p.add_argument("--device", default=None, help="torch device (default: cuda:LOCAL_RANK if available, else cpu)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="show full tracebacks on errors")
    p.set_defaults(func=run_lm_train)

    p = subparsers.add_parser(
        "generate", help="continue an audio prompt with a trained LM",
        description="Encode PROMPT with the LM's tokenizer, continue it for SECONDS with the LM, decode "
        "prompt + continuation and write OUT_AUDIO (format from the extension).",
    )
    p.add_argument("--lm", required=True, help="LM run folder or checkpoint directory (from `audiolatent lm train`)")
    p.add_argument("--prompt", required=True, help="audio file to continue")
    p.add_argument("--seconds", type=float, required=True, help="seconds of audio to generate after the prompt")
    p.add_argument("--temperature", type=float, default=1.0,
                   help="sampling temperature of token LMs (default 1; 0: greedy)")
    p.add_argument("--top-k", type=int, default=None, help="sample among the k most likely codes (token LMs)")
    p.add_argument("--top-p", type=float, default=None, help="nucleus sampling mass (token LMs)")
    p.add_argument("--seed", type=int, default=0, help="sampling seed (default 0)")
    p.add_argument("--device", default=None, help="torch device (default: cpu)")
    p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="show full tracebacks on errors")
    p.add_argument("output", metavar="OUT_AUDIO", help="audio file to write (wav, flac, ...)")
    p.set_defaults(func=run_generate)
