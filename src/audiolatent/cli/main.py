"""``audiolatent <command>``: list, info, encode, decode, roundtrip, export, bench, train, lm train, generate,
data prepare.

Errors a user can cause (bad file, unknown tokenizer, corrupt latent...) print one line on
stderr and exit with status 1; ``--debug`` shows the traceback instead. Usage errors exit 2.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import textwrap
from pathlib import Path

from audiolatent.core.atomic import check_output_path
from audiolatent.core.errors import AudioLatentError

EXIT_ERROR = 1


def _cmd_list(args: argparse.Namespace) -> int:
    from audiolatent.core import catalogue
    from audiolatent.core.registry import adapter_status, list_names

    def status_of(name: str) -> str:
        if name in catalogue.ADAPTERS:  # from the catalogue: no torch import
            return adapter_status(name)
        from audiolatent.tokenizers.adapters import ADAPTERS, adapter_status as from_spec  # a plugin's adapter

        return from_spec(name) if name in ADAPTERS else "status unknown"

    rows = list_names()  # built-ins from the static catalogue: no torch import
    width = max(len(name) for name, _, _ in rows)
    for name, family, description in rows:
        status = f"  [{status_of(name)}]" if family == "external" else ""
        print(f"{name:<{width}}  {family:<11}  {description}{status}")
    return 0


def _cmd_info(args: argparse.Namespace) -> int:
    from audiolatent.core.registry import builtin_facts

    info = builtin_facts(args.tokenizer)  # a built-in name: its describe() from the catalogue, no torch import
    if info is None:
        from audiolatent.core.registry import load_tokenizer

        info = load_tokenizer(args.tokenizer).describe()
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    for key, value in info.items():
        if key == "streams":
            for s in value:
                print(f"{'stream':<24}{s['description']}")
        else:
            print(f"{key:<24}{_fmt(value)}")
    return 0


class NameFriendlyHelpFormatter(argparse.HelpFormatter):
    """argparse's help layout, wrapped between words only: a name such as ``codec-16k-default``
    is never split at a hyphen across two lines (it stays copyable)."""

    def _split_lines(self, text: str, width: int) -> list[str]:
        return textwrap.wrap(re.sub(r"\s+", " ", text).strip(), width, break_on_hyphens=False)

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        return textwrap.fill(re.sub(r"\s+", " ", text).strip(), width, initial_indent=indent, subsequent_indent=indent,
                             break_on_hyphens=False)


def tokenizer_names_epilog() -> str:
    """The built-in tokenizer names, for the ``--help`` of commands that take one (read without torch)."""
    from audiolatent.core.registry import builtin_names

    groups = "; ".join(f"{family}: {', '.join(names)}" for family, names in builtin_names().items())
    return (f"tokenizer names ({groups}); external ones need pip install 'audiolatent[adapters]', "
            "`audiolatent list` describes each; a checkpoint directory works too")


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    if value is None:
        return "-"
    return str(value)


def _cmd_encode(args: argparse.Namespace) -> int:
    import torch

    from audiolatent.core.audio import load_audio
    from audiolatent.core.registry import load_tokenizer

    check_output_path(args.output, args.input, what="output latent")
    tok = load_tokenizer(args.tokenizer, device=args.device)
    audio, _ = load_audio(args.input, sample_rate=tok.sample_rate, mono=args.downmix and tok.channels == 1)
    if audio.shape[1] != tok.channels:
        raise AudioLatentError(
            f"{args.input}: {audio.shape[1]} channel(s) but {tok.name} takes {tok.channels}"
            + (" (pass --downmix to average the channels)" if tok.channels == 1 else "")
        )
    from audiolatent.tokenizers.long import encode_any

    with torch.inference_mode():
        latent = encode_any(tok, audio)  # chunked beyond a minute: memory stays flat as files grow
    latent.save(args.output)
    rate = (f"{latent.bits_per_second / 1000:g} kbps nominal" if latent.is_discrete
            else f"{latent.values_per_second:g} values/s")
    print(f"{args.output}: {latent.describe()}; {rate}", file=sys.stderr)
    return 0


def _cmd_decode(args: argparse.Namespace) -> int:
    import torch

    from audiolatent.core.audio import save_audio
    from audiolatent.core.latent import Latent
    from audiolatent.core.registry import load_tokenizer

    check_output_path(args.output, args.input, what="output audio")
    latent = Latent.load(args.input)
    name = args.tokenizer or latent.tokenizer
    if not name:
        raise AudioLatentError(f"{args.input}: the latent does not name its tokenizer; pass --tokenizer")
    try:
        tok = load_tokenizer(name, device=args.device)
    except AudioLatentError as exc:
        raise AudioLatentError(f"{args.input} was made by {name!r}, which cannot be loaded ({exc}); pass --tokenizer") from None
    from audiolatent.tokenizers.long import decode_any

    with torch.inference_mode():
        audio = decode_any(tok, latent)
    save_audio(args.output, audio[0], tok.sample_rate)
    print(f"{args.output}: {audio.shape[-1] / tok.sample_rate:.2f} s at {tok.sample_rate} Hz", file=sys.stderr)
    return 0


def _cmd_roundtrip(args: argparse.Namespace) -> int:
    from audiolatent.bench.roundtrip import DEFAULT_TOKENIZERS, format_table, run_roundtrip

    results = run_roundtrip(
        args.tokenizer or DEFAULT_TOKENIZERS,
        data=args.data,
        split=args.split,
        max_files=args.max_files,
        out=args.out,
        progress=not args.no_progress,
    )
    print(format_table(results))
    if args.out:
        print(f"results and example reconstructions written to {args.out}", file=sys.stderr)
    return 0


#: ``export --format``: a checkpoint, or a streaming step for deployment (audiolatent.tokenizers.export.FORMATS)
EXPORT_FORMATS = ("checkpoint", "export", "torchscript", "onnx")
STEP_PARTS = ("codec", "encode", "decode")


def _cmd_export(args: argparse.Namespace) -> int:
    from audiolatent.core.registry import load_tokenizer

    step_options = {"--chunk-frames": args.chunk_frames, "--step": args.step, "--n-q": args.n_q}
    if args.format == "checkpoint":
        given = [flag for flag, value in step_options.items() if value is not None]
        if given:
            raise AudioLatentError(f"{', '.join(given)}: streaming-step options; pass --format export|torchscript|onnx")
        from audiolatent.core.checkpoint import save_checkpoint

        weights = args.weights or "float32"
        tok = load_tokenizer(args.checkpoint)
        out = save_checkpoint(tok, args.output, weights=weights)
        size = sum(f.stat().st_size for f in Path(out).iterdir())
        print(f"{out}: {weights} weights, {size / 1e6:.2f} MB")
        return 0
    if args.weights is not None:
        raise AudioLatentError("--weights sets the stored weights of --format checkpoint; a streaming step runs the "
                               "weights the tokenizer loads with")
    from audiolatent.tokenizers.export import MANIFEST_FILE, check_new_folder, export_streaming_step

    check_new_folder(args.output)  # before loading the model
    tok = load_tokenizer(args.checkpoint)
    frames = args.chunk_frames or 1
    out = export_streaming_step(tok, args.output, args.format, chunk_frames=frames, part=args.step or "codec",
                                n_q=args.n_q)
    manifest = json.loads((Path(out) / MANIFEST_FILE).read_text())
    ms = 1000 * manifest["chunk_samples"] / manifest["sample_rate"]
    print(f"{out}: {manifest['part']} streaming step of {tok.name} ({args.format}), {frames} frame(s) = {ms:g} ms "
          f"per call, {len(manifest['state'])} state tensors; inputs, outputs and provenance in {out}/{MANIFEST_FILE}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="audiolatent",
        description="Build, train, stream and measure audio latents (rate, distortion, modelability, streaming).",
    )
    parser.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    parser.add_argument("--version", action="version", version=_version())
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser("list", help="list the registered tokenizers")
    p.set_defaults(func=_cmd_list)

    names = tokenizer_names_epilog()
    p = sub.add_parser("info", help="describe a tokenizer: rates, streams, causality, latency", epilog=names,
                       formatter_class=NameFriendlyHelpFormatter)
    p.add_argument("tokenizer", help="registered name (see `audiolatent list`) or checkpoint directory")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=_cmd_info)

    p = sub.add_parser("encode", help="encode an audio file into a .latent file", epilog=names,
                       formatter_class=NameFriendlyHelpFormatter)
    p.add_argument("--tokenizer", "-t", required=True, help="registered name or checkpoint directory")
    p.add_argument("--downmix", action="store_true", help="average multi-channel input for a mono tokenizer")
    p.add_argument("--device", default=None, help="torch device (default: cpu)")
    p.add_argument("input", help="audio file (wav, flac, ogg, mp3, ...)")
    p.add_argument("output", help="latent file to write (safetensors)")
    p.set_defaults(func=_cmd_encode)

    p = sub.add_parser("decode", help="decode a .latent file back to audio", epilog=names,
                       formatter_class=NameFriendlyHelpFormatter)
    p.add_argument("--tokenizer", "-t", default=None, help="override the tokenizer recorded in the latent")
    p.add_argument("--device", default=None, help="torch device (default: cpu)")
    p.add_argument("input", help="latent file written by `audiolatent encode`")
    p.add_argument("output", help="audio file to write; format from the extension")
    p.set_defaults(func=_cmd_decode)

    p = sub.add_parser("roundtrip", help="encode+decode a corpus through tokenizers and print a table", epilog=names,
                       formatter_class=NameFriendlyHelpFormatter)
    p.add_argument("--tokenizer", "-t", action="append", help="tokenizer to include (repeatable; default: the built-ins)")
    p.add_argument("--data", default=None, help="manifest (.jsonl), folder or file (default: built-in corpus)")
    p.add_argument("--split", default="test", help="split to use: train, test or all (default: test)")
    p.add_argument("--max-files", type=int, default=None, help="use at most this many files per dataset")
    p.add_argument("--out", default=None, help="folder for results.json and example reconstructions")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=_cmd_roundtrip)

    p = sub.add_parser("export", help="write a checkpoint's model (config + weights only), optionally compressed, or "
                       "a causal codec's streaming step as a program for deployment (torch.export, TorchScript)",
                       epilog=names, formatter_class=NameFriendlyHelpFormatter)
    p.add_argument("checkpoint", help="checkpoint directory (e.g. a training run's checkpoints/step_N) or registered name")
    p.add_argument("output", help="directory to write: a checkpoint (replaced atomically if it is one) or, for a "
                   "streaming step, a new folder (never replaces anything)")
    p.add_argument("--format", choices=EXPORT_FORMATS, default="checkpoint",
                   help="checkpoint (default); export = torch.export program of one streaming step, torchscript = "
                   "torch.jit.trace of it; onnx is refused with the reason (see README, Export)")
    p.add_argument("--weights", choices=("float32", "float16", "int8"), default=None,
                   help="checkpoint only: stored weight format (default float32); int8 = per-channel int8 "
                   "conv/linear weights, a quarter of the size")
    p.add_argument("--chunk-frames", type=int, default=None, help="streaming step: frames per call (default 1 = one "
                   "hop, 20 ms for codec-16k-default)")
    p.add_argument("--step", choices=STEP_PARTS, default=None,
                   help="streaming step: encode + decode (codec, default), encode only or decode only")
    p.add_argument("--n-q", type=int, default=None, help="streaming step: quantisers of an RVQ (default all)")
    p.set_defaults(func=_cmd_export)

    from audiolatent.cli.bench import add_bench_parser
    from audiolatent.cli.data import add_data_parsers
    from audiolatent.cli.fit import add_fit_parsers
    from audiolatent.cli.lm import add_lm_parsers
    from audiolatent.cli.train import add_train_parser

    add_bench_parser(sub)
    add_train_parser(sub)
    add_lm_parsers(sub)  # `lm train` and `generate`
    add_data_parsers(sub)  # `data prepare`
    add_fit_parsers(sub)  # `fit phone-teacher`
    return parser


def _version() -> str:
    from audiolatent import __version__

    return f"audiolatent {__version__}"


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """Warnings as one ``audiolatent: warning: ...`` line (not Python's two-line source excerpt)."""
    print(f"audiolatent: warning: {message}", file=sys.stderr if file is None else file)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.debug:
        import warnings

        warnings.showwarning = _show_warning
    try:
        if getattr(args, "device", None) is not None:  # before any model is built or data read
            from audiolatent.core.device import resolve_device

            resolve_device(args.device)
        return int(args.func(args) or 0)
    except AudioLatentError as exc:
        if args.debug:
            raise
        print(f"audiolatent: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except OSError as exc:  # the last net: an OS refusal (permissions, disk full) is one line, not a traceback
        if args.debug:
            raise
        where = f"{exc.filename}: " if getattr(exc, "filename", None) else ""
        print(f"audiolatent: error: {where}{exc.strerror or exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("audiolatent: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
