"""Inference export of a streaming codec: one streaming step as a pure function of explicit state.

Inside ``with codec.streaming(1):`` every module keeps its state (the left context of a causal
conv, the overlap-add tail of the iSTFT head, an LSTM's hidden state) in a dataclass on itself
(:mod:`audiolatent.core.streaming`). A deployment runtime cannot see those objects, so
:class:`StreamingStep` turns one streaming call into a function of tensors only::

    step = StreamingStep(codec, chunk_frames=1)       # a causal, eval-mode NeuralCodec
    state = step.initial_state()                      # list of zero tensors, in step.slots order
    codes, audio_out, *state = step(chunk, *state)    # chunk [B, C, k * hop] -> codes long [B, n_q, k]

which is what ``torch.export`` and ``torch.jit.trace`` record (:func:`export_streaming_step`).

The state list
--------------
``step.slots`` names every state tensor, ``"<module path>.<field>"`` (``"encoder.stft.previous"``,
``"decoder.head.tail"``, ...), with its shape and dtype. The order is fixed: the modules in
``codec.named_modules()`` order (encoder, bottleneck, then decoder, as registered), the fields
of each state dataclass in declaration order; fields with no elements (the context of a
kernel-1 conv) are left out. The encode-only step (``part="encode"``) takes the encoder's and
bottleneck's slots, the decode-only step (``part="decode"``) the decoder's, and the full step
(``part="codec"``) both, encoder first. The shapes do not change from call to call (checked when
the step is built); a module whose state grows (a transformer's KV cache) or holds a Python
number cannot be exported this way and is refused.

Inputs and outputs of the three parts, ``k = chunk_frames`` (fixed at export), ``B = batch_size``:

* ``codec``: ``(audio [B, C, k * hop], *state) -> (codes long [B, n_q, k], audio [B, C, k * hop], *state)``
* ``encode``: ``(audio [B, C, k * hop], *state) -> (codes long [B, n_q, k], *state)``
* ``decode``: ``(codes long [B, n_q, k], *state) -> (audio [B, C, k * hop], *state)``

Equality with eager streaming
-----------------------------
The step runs the modules' own streaming code, so it is the eager step with two differences in
*how* a product is computed, never in what: derived tensors (folded weight norm, codebook norms)
are recomputed inside the graph instead of memoised (:func:`audiolatent.core.cache.is_tracing`),
and an int8-exported weight (the shipped ``codec-16k-default``) is multiplied in float32 instead
of through FBGEMM's fp16-weight GEMM, whose packed matrix is a handle no saved program can carry
(:mod:`audiolatent.nn.matvec`). Outputs therefore agree to float32 rounding (``tests/tokenizers/
test_export.py`` pins codes identical and audio within 1e-5 over seconds of streamed speech).

Formats (:data:`FORMATS`)
-------------------------
* ``export``: ``torch.export`` (non-strict), saved with ``torch.export.save`` (``step.pt2``);
  load with ``torch.export.load(path).module()``.
* ``torchscript``: ``torch.jit.trace`` of the step (``step.torchscript.pt``); ``torch.jit.load``.
  Deprecated by PyTorch (2.13 warns on trace, save and load; the warnings are silenced here), but
  its graph runs in C++ and so costs less per call than the Python code of a loaded
  ``torch.export`` program (``benchmarks/export_speed.py``).
* ``onnx``: not available. :data:`ONNX_STATUS` says why: PyTorch's ONNX exporters need the
  ``onnxscript`` (``dynamo=True``) or ``onnx`` (legacy) packages, which audiolatent does not
  depend on; and the legacy TorchScript-based exporter has no ONNX symbolic for the complex
  tensors of the STFT features and the iSTFT head (``aten::complex``, ``aten::fft_rfft``,
  ``aten::fft_irfft``). :func:`export_streaming_step` tries the ``dynamo=True`` exporter when
  ``onnxscript`` is importable; that path is not tested here.

An export is a folder (:func:`export_streaming_step`): the program, ``initial_state.safetensors``
(the zero state, one tensor per slot name) and ``export.json`` (the slots in order, the inputs
and outputs, and provenance: codec name, config hash, weights fingerprint, versions of torch and
audiolatent). :func:`load_exported_step` reads it back.
"""

from __future__ import annotations

import copy
import dataclasses
import importlib.util
import json
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn.utils import parametrize

from audiolatent.core.atomic import atomic_dir
from audiolatent.core.errors import ExportError, OutputError
from audiolatent.core.streaming import StreamingModule

__all__ = [
    "FORMATS", "PARTS", "ONNX_STATUS", "PROGRAM_FILES", "MANIFEST_FILE", "STATE_FILE", "StateSlot", "StreamingStep",
    "ExportedStep", "check_new_folder", "export_streaming_step", "load_exported_step",
]

FORMATS = ("export", "torchscript", "onnx")
PARTS = ("codec", "encode", "decode")
PROGRAM_FILES = {"export": "step.pt2", "torchscript": "step.torchscript.pt", "onnx": "step.onnx"}
MANIFEST_FILE = "export.json"
STATE_FILE = "initial_state.safetensors"
ONNX_STATUS = (
    "ONNX export needs the onnxscript package (torch.onnx.export(dynamo=True)), which is not installed and not an "
    "audiolatent dependency; the legacy exporter (dynamo=False) needs the onnx package and has no ONNX symbolic for "
    "the complex tensors of the STFT features and the iSTFT head (aten::complex, aten::fft_rfft, aten::fft_irfft). "
    "Use --format export or torchscript"
)


@dataclass(frozen=True)
class StateSlot:
    """One tensor of the explicit state: ``name`` = ``"<module path>.<field>"``."""

    name: str
    shape: tuple[int, ...]
    dtype: torch.dtype

    def describe(self) -> dict:
        return {"name": self.name, "shape": list(self.shape), "dtype": str(self.dtype).removeprefix("torch.")}


@dataclass
class _Holder:
    """A stateful module of the step, its fresh state (the template) and the exported fields."""

    path: str
    module: StreamingModule
    template: Any
    fields: tuple[str, ...]


def _holders(codec: nn.Module, roots: tuple[str, ...], batch_size: int) -> tuple[list[StreamingModule], list[_Holder]]:
    """Every StreamingModule below ``codec.<root>`` for the roots, and those with state."""
    modules, holders = [], []
    for root in roots:
        for path, module in getattr(codec, root).named_modules(prefix=root):
            if not isinstance(module, StreamingModule):
                continue
            modules.append(module)
            template = module._init_streaming_state(batch_size)
            if template is None:
                continue
            if not dataclasses.is_dataclass(template):
                raise ExportError(f"{path} ({type(module).__name__}) keeps its streaming state in a "
                                  f"{type(template).__name__}, not a dataclass of tensors: it cannot be exported")
            fields = []
            for f in dataclasses.fields(template):
                value = getattr(template, f.name)
                if not isinstance(value, torch.Tensor):
                    raise ExportError(f"{path} ({type(module).__name__}): streaming state field {f.name!r} is a "
                                      f"{type(value).__name__}, not a tensor: its step cannot be a function of tensors")
                if value.numel():
                    fields.append(f.name)
            holders.append(_Holder(path, module, template, tuple(fields)))
    return modules, holders


class StreamingStep(nn.Module):
    """One streaming call of a causal :class:`~audiolatent.tokenizers.codec.NeuralCodec` as a function of
    its input and its explicit state (module docstring: inputs, outputs, the state list).

    Args:
        codec: a causal codec in eval mode whose bottleneck makes one stream (an RVQ: codes [B, n_q, T]).
            The step runs the codec's own modules (no copy): calling it sets their streaming
            attributes for the call and puts the previous ones back.
        chunk_frames: frames ``k`` per call (``k * hop_length`` samples in, ``k`` frames of codes).
        batch_size: signals ``B`` per call.
        part: ``"codec"`` (encode + decode), ``"encode"`` or ``"decode"``.
        n_q: quantisers of an RVQ-like bottleneck (None: all).

    Attributes: ``slots`` (the :class:`StateSlot` list), ``chunk_samples``, ``n_codebooks``,
    ``input_shape``.

    Raises:
        ExportError: a non-causal codec, training mode, a bottleneck with several streams, or a
            module whose state is not a fixed set of fixed-shape tensors.
    """

    def __init__(self, codec: nn.Module, chunk_frames: int = 1, batch_size: int = 1, part: str = "codec",
                 n_q: int | None = None) -> None:
        super().__init__()
        name = getattr(codec, "name", type(codec).__name__)
        if part not in PARTS:
            raise ExportError(f"unknown step part {part!r}; known: {', '.join(PARTS)}")
        if not all(hasattr(codec, a) for a in ("encoder", "bottleneck", "decoder")):
            raise ExportError(f"{name}: only neural codecs (encoder, bottleneck, decoder) export a streaming step, "
                              f"got a {type(codec).__name__}")
        if not codec.causal:
            raise ExportError(f"{name} is not causal (lookahead {codec.lookahead} samples): it cannot stream exactly, "
                              "so it has no streaming step to export; build it with causal encoder and decoder")
        if codec.training:
            raise ExportError(f"{name} is in training mode; call .eval() before exporting its streaming step")
        if not isinstance(chunk_frames, int) or chunk_frames < 1 or not isinstance(batch_size, int) or batch_size < 1:
            raise ExportError(f"chunk_frames and batch_size must be positive ints, got {chunk_frames!r}, {batch_size!r}")
        try:
            specs = codec.bottleneck.stream_specs(n_q)
        except ValueError as exc:  # an n_q outside [1, n_codebooks]
            raise ExportError(f"{name}: {exc}") from None
        if len(specs) != 1:
            raise ExportError(f"{name}: its bottleneck makes {len(specs)} streams; the exported step has one codes output")
        self.codec, self.part, self.n_q = codec, part, n_q
        self.chunk_frames, self.batch_size = chunk_frames, batch_size
        self.chunk_samples = chunk_frames * codec.hop_length
        self.stream_kind = specs[0].kind
        self.n_codebooks = len(specs[0].codebook_sizes) if specs[0].kind == "discrete" else specs[0].dim
        roots = {"codec": ("encoder", "bottleneck", "decoder"), "encode": ("encoder", "bottleneck"),
                 "decode": ("decoder",)}[part]
        self._streaming, self._holders = _holders(codec, roots, batch_size)
        self.slots = [
            StateSlot(f"{h.path}.{f}", tuple(getattr(h.template, f).shape), getattr(h.template, f).dtype)
            for h in self._holders for f in h.fields
        ]
        self._check_fixed_state()

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of the first input: audio ``[B, C, k * hop]`` or codes ``[B, n_q, k]``."""
        if self.part == "decode":
            return (self.batch_size, self.n_codebooks, self.chunk_frames)
        return (self.batch_size, self.codec.channels, self.chunk_samples)

    def example_input(self) -> torch.Tensor:
        """A zero first input (silence, or code 0 everywhere) of the step's shape and dtype."""
        p = next(self.codec.parameters())
        if self.part == "decode":
            dtype = torch.long if self.stream_kind == "discrete" else p.dtype
            return torch.zeros(self.input_shape, dtype=dtype, device=p.device)
        return torch.zeros(self.input_shape, dtype=p.dtype, device=p.device)

    def initial_state(self) -> list[torch.Tensor]:
        """The fresh state (what ``codec.streaming()`` starts from), one new tensor per slot."""
        return [getattr(h.module._init_streaming_state(self.batch_size), f).clone() for h in self._holders for f in h.fields]

    def output_names(self) -> list[str]:
        first = {"codec": ["codes", "audio"], "encode": ["codes"], "decode": ["audio"]}[self.part]
        return first + [f"new.{s.name}" for s in self.slots]

    def input_names(self) -> list[str]:
        return ["codes" if self.part == "decode" else "audio"] + [s.name for s in self.slots]

    def forward(self, x: torch.Tensor, *state: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """See the module docstring; ``state`` in :attr:`slots` order."""
        outputs, states = self._step(x, state)
        return (*outputs, *[getattr(s, f) for h, s in zip(self._holders, states) for f in h.fields])

    def _step(self, x: torch.Tensor, state: tuple[torch.Tensor, ...]) -> tuple[tuple[torch.Tensor, ...], list[Any]]:
        """The outputs and every stateful module's state object after the call."""
        if len(state) != len(self.slots):
            raise ExportError(f"the step takes {len(self.slots)} state tensors ({self.slots[0].name if self.slots else '-'}"
                              f", ...), got {len(state)}")
        if tuple(x.shape) != self.input_shape:
            raise ExportError(f"the step was built for a first input of shape {list(self.input_shape)}, got {list(x.shape)}")
        saved = [(m, m._streaming_state, m._streaming_batch_size) for m in self._streaming]
        try:
            for m in self._streaming:
                m._streaming_batch_size, m._streaming_state = self.batch_size, None
            given = iter(state)
            for h in self._holders:
                h.module._streaming_state = dataclasses.replace(h.template, **{f: next(given) for f in h.fields})
            outputs = self._call(x)
            states = [h.module._streaming_state for h in self._holders]
        finally:
            for m, module_state, batch in saved:
                m._streaming_state, m._streaming_batch_size = module_state, batch
        return outputs, states

    def _call(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        codec = self.codec
        if self.part == "decode":
            return (codec.decoder(codec.bottleneck.decode([x])),)
        codes = codec.bottleneck.encode(codec.encoder(x), self.n_q)[0]
        if self.part == "encode":
            return (codes,)
        return codes, codec.decoder(codec.bottleneck.decode([codes]))

    def _check_fixed_state(self) -> None:
        """One step from the fresh state must leave every state field (the empty ones too) as it found its shape."""
        with torch.no_grad():
            _, states = self._step(self.example_input(), tuple(self.initial_state()))
        for h, after in zip(self._holders, states):
            for f in dataclasses.fields(h.template):
                old, new = getattr(h.template, f.name), getattr(after, f.name)
                if not isinstance(new, torch.Tensor) or new.shape != old.shape or new.dtype != old.dtype:
                    what = f"{list(new.shape)} {new.dtype}" if isinstance(new, torch.Tensor) else type(new).__name__
                    raise ExportError(f"streaming state {h.path}.{f.name} changes from {list(old.shape)} {old.dtype} to "
                                      f"{what} after one step: only a fixed-shape state exports")


@dataclass
class ExportedStep:
    """An exported step loaded back: ``program(x, *state)`` returns ``(*outputs, *new_state)``."""

    program: Callable[..., tuple[torch.Tensor, ...]]
    manifest: dict
    state: dict[str, torch.Tensor]  # the initial state by slot name

    @property
    def slot_names(self) -> list[str]:
        return [s["name"] for s in self.manifest["state"]]

    def initial_state(self) -> list[torch.Tensor]:
        """Fresh copies of the zero state, in the program's order."""
        return [self.state[name].clone() for name in self.slot_names]

    def __call__(self, x: torch.Tensor, *state: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """``program(x, *state)`` after checking what a traced program cannot: the shape of ``x``, the
        number of state tensors (a chunk of another size would fail deep inside the graph)."""
        expected = self.manifest["inputs"][0]["shape"]
        if list(x.shape) != expected or len(state) != len(self.manifest["state"]):
            raise ExportError(f"this step takes a first input of shape {expected} and {len(self.manifest['state'])} "
                              f"state tensors, got {list(x.shape)} and {len(state)}")
        return tuple(self.program(x, *state))


def _inference_copy(codec: nn.Module) -> nn.Module:
    """A copy of ``codec`` with weight norm folded, in eval mode, rebuilt from its config and weights.

    Not ``copy.deepcopy``: a deep copy of a weight-normed module shares its parametrised class with
    the original, and folding the copy would take the ``weight`` property off the original too.
    """
    if not hasattr(codec, "prepare_for_inference") or not hasattr(codec, "config"):
        return copy.deepcopy(codec).eval()
    state = codec.state_dict()
    fresh = type(codec)(codec.config)
    if not any(parametrize.is_parametrized(m) for m in codec.modules()):
        fresh.prepare_for_inference()  # the codec was folded already: so are its state-dict keys
    p = next(codec.parameters())
    fresh.to(device=p.device, dtype=p.dtype).load_state_dict(state)
    fresh.name = codec.name
    return fresh.prepare_for_inference(winograd=False)  # an exported program replays the exact path


def _provenance(codec: nn.Module) -> dict:
    from audiolatent.core.config import to_dict
    from audiolatent.core.provenance import environment, tokenizer_fingerprint

    return {
        "name": codec.name,
        "kind": codec.kind,
        "config_hash": codec.config_hash,
        "weights_fingerprint": tokenizer_fingerprint(codec),  # sha256 over config and every tensor, 16 hex digits
        "config": to_dict(codec.config),
    }, environment()


def _save_program(step: StreamingStep, fmt: str, example: tuple[torch.Tensor, ...], path: Path) -> None:
    if fmt == "export":
        with warnings.catch_warnings():  # nn.LSTM refreshes its weight list on every call, which export reports
            warnings.filterwarnings("ignore", message=r".*_flat_weights.*were assigned during export")
            program = torch.export.export(step, example, strict=False)
        torch.export.save(program, str(path))
    elif fmt == "torchscript":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", torch.jit.TracerWarning)  # shape tests, fixed by the export's chunk size
            warnings.simplefilter("ignore", DeprecationWarning)  # TorchScript's deprecation: said in the docstring
            traced = torch.jit.trace(step, example, check_trace=False)
            torch.jit.save(traced, str(path))
    else:
        try:
            torch.onnx.export(step, example, str(path), dynamo=True, input_names=step.input_names(),
                              output_names=step.output_names())
        except Exception as exc:  # the converter's own errors name the operator that failed
            raise ExportError(f"ONNX export of the streaming step failed: {' '.join(str(exc).split())[:500]}") from None


def check_new_folder(path: str | Path) -> Path:
    """``path`` as a Path; OutputError if anything (file, folder, link) is there already."""
    target = Path(path)
    if target.exists() or target.is_symlink():
        raise OutputError(f"{target} already exists; an export never overwrites (remove it or choose another path)")
    return target


def export_streaming_step(codec: nn.Module, out: str | Path, fmt: str = "export", chunk_frames: int = 1,
                          part: str = "codec", batch_size: int = 1, n_q: int | None = None) -> Path:
    """Write the streaming step of ``codec`` to a new folder ``out`` (module docstring); returns ``out``.

    The codec is copied and prepared for inference (weight norm folded, eval mode); the caller's
    module is not changed. The folder is written atomically and never replaces anything.

    Raises:
        OutputError: ``out`` already exists.
        ExportError: a codec that cannot be exported (see :class:`StreamingStep`), an unknown
            format, or ONNX (:data:`ONNX_STATUS`).
    """
    target = check_new_folder(out)
    if fmt not in FORMATS:
        raise ExportError(f"unknown export format {fmt!r}; known: {', '.join(FORMATS)}")
    if fmt == "onnx" and importlib.util.find_spec("onnxscript") is None:  # the dynamo exporter's translation library
        raise ExportError(ONNX_STATUS)
    step = StreamingStep(_inference_copy(codec), chunk_frames, batch_size, part, n_q)
    inference = step.codec
    codec_info, environment = _provenance(codec)
    example = (step.example_input(), *step.initial_state())
    manifest = {
        "format": fmt,
        "program": PROGRAM_FILES[fmt],
        "part": part,
        "codec": codec_info,
        "sample_rate": inference.sample_rate,
        "channels": inference.channels,
        "hop_length": inference.hop_length,
        "chunk_frames": chunk_frames,
        "chunk_samples": step.chunk_samples,
        "batch_size": batch_size,
        "n_q": step.n_codebooks if step.stream_kind == "discrete" else None,
        "inputs": [{"name": n, "shape": list(t.shape), "dtype": str(t.dtype).removeprefix("torch.")}
                   for n, t in zip(step.input_names(), example)],
        "outputs": step.output_names(),
        "state": [s.describe() for s in step.slots],
        "state_file": STATE_FILE,
        "usage": "outputs = program(first_input, *state); the last len(state) outputs are the next call's state",
        "provenance": environment,
    }
    from safetensors.torch import save_file

    with torch.no_grad(), atomic_dir(target) as tmp:
        _save_program(step, fmt, example, tmp / PROGRAM_FILES[fmt])
        save_file({s.name: t.contiguous() for s, t in zip(step.slots, example[1:])}, str(tmp / STATE_FILE))
        (tmp / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2) + "\n")
    return target


def load_exported_step(path: str | Path) -> ExportedStep:
    """Read a folder written by :func:`export_streaming_step` back (``export`` and ``torchscript``)."""
    from safetensors.torch import load_file

    folder = Path(path)
    manifest_path = folder / MANIFEST_FILE
    if not manifest_path.is_file():
        raise ExportError(f"{folder} is not a streaming-step export (no {MANIFEST_FILE})")
    manifest = json.loads(manifest_path.read_text())
    program_path = folder / manifest["program"]
    if manifest["format"] == "export":
        program = torch.export.load(str(program_path)).module()
    elif manifest["format"] == "torchscript":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            program = torch.jit.load(str(program_path))
    else:
        raise ExportError(f"{folder}: cannot run a {manifest['format']!r} export in PyTorch")
    return ExportedStep(program, manifest, load_file(str(folder / STATE_FILE)))
