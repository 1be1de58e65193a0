"""Phone alignments from transcripts: pocketsphinx forced alignment, and how to check it.

The phone probe and the phone teacher need frame-level phone labels. ``speech_aligned`` has exact
ones from its synthesiser. A real voice has only a transcript. :func:`force_align` aligns the
transcript with pocketsphinx's bundled US-English acoustic model and dictionary, in two passes:

1. word alignment to the transcript (``set_align_text``);
2. phone and state alignment inside those words (``set_alignment``).

The result has 10 ms resolution, in the flite/CMU phone names that ``speech_aligned`` uses:
lower case, and ``pau`` for silence (pocketsphinx's ``SIL``, and any gap between words).

:func:`alignment_agreement` measures an alignment against a known one:

* ``frame_agreement``: the share of 10 ms frames, sampled at their centres, where both give the
  same phone after :data:`EQUIVALENT` merges the sets (flite's reduced vowel ``ax`` is CMUdict's
  ``ah``);
* ``boundary_error_ms``: the median distance from each true phone boundary to the nearest
  estimated boundary.

Run both on the synthetic voices, where the truth is known, before trusting either on a real
voice (``audiolatent data align``, :func:`align_entries`). Words missing from the dictionary make
a row fail with a warning; it is left without phones.
"""

from __future__ import annotations

import re
import statistics
import warnings
from dataclasses import replace

import numpy as np
import torch

from audiolatent.data.manifest import DataError, ManifestEntry

__all__ = ["force_align", "align_entries", "alignment_agreement", "normalise_transcript", "EQUIVALENT"]

#: phone names merged before comparing a CMUdict alignment with a flite one
EQUIVALENT = {"ax": "ah", "sil": "pau", "sp": "pau"}
FRAME_SECONDS = 0.01  # pocketsphinx's frame rate: 100 frames/s


def normalise_transcript(text: str) -> str:
    """Lower case, letters and in-word apostrophes only, single spaces (what the dictionary holds)."""
    return " ".join(re.sub(r"[^a-z' ]", " ", text.lower().replace("-", " ")).split())


def _decoder():
    try:
        import pocketsphinx
    except ImportError:
        raise DataError("phone alignment needs pocketsphinx: pip install 'audiolatent[test]' (or pocketsphinx)") from None
    return pocketsphinx.Decoder(samprate=16000, logfn="/dev/null")


def _pcm(audio: torch.Tensor) -> bytes:
    x = torch.as_tensor(audio).detach().reshape(-1).clamp(-1, 1).cpu().numpy()
    return (x * 32767).astype(np.int16).tobytes()


def force_align(audio: torch.Tensor, text: str) -> list[tuple[str, float, float]]:
    """Phones ``[(phone, start_s, end_s), ...]`` covering ``audio`` (16 kHz mono) spoken as ``text``.

    Each call loads a fresh decoder (0.5 s): one that has run a phone pass does not align the
    next transcript reliably. Raises DataError when the transcript is empty, has a word outside
    the dictionary, or cannot be aligned.
    """
    words = normalise_transcript(text)
    if not words:
        raise DataError("cannot align an empty transcript")
    decoder = _decoder()
    pcm = _pcm(audio)
    try:
        decoder.set_align_text(words)
    except RuntimeError as exc:
        unknown = [w for w in words.split() if decoder.lookup_word(w) is None]
        detail = f"words not in the dictionary: {unknown}" if unknown else " ".join(str(exc).split())
        raise DataError(f"cannot align {text!r}: {detail}") from None
    try:
        for second_pass in (False, True):
            if second_pass:
                decoder.set_alignment()
            decoder.start_utt()
            decoder.process_raw(pcm, full_utt=True)
            decoder.end_utt()
    except RuntimeError as exc:  # the search found no path through the transcript
        raise DataError(f"pocketsphinx could not align {text!r} ({' '.join(str(exc).split())})") from None
    alignment = decoder.get_alignment()
    if alignment is None:
        raise DataError(f"pocketsphinx found no alignment for {text!r}")
    phones: list[tuple[str, float, float]] = []
    for word in alignment:
        for phone in word:
            name = phone.name.lower()
            name = "pau" if name in ("sil", "sp", "+nsn+", "+spn+") else name
            start, end = phone.start * FRAME_SECONDS, (phone.start + phone.duration) * FRAME_SECONDS
            if phones and phones[-1][0] == "pau" == name:
                phones[-1] = ("pau", phones[-1][1], end)  # merge adjacent silences
            else:
                phones.append((name, start, end))
    duration = torch.as_tensor(audio).shape[-1] / 16000
    if phones and phones[-1][2] < duration - 1e-9:  # the alignment stops short of the last samples
        if phones[-1][0] == "pau":
            phones[-1] = ("pau", phones[-1][1], duration)
        else:
            phones.append(("pau", phones[-1][2], duration))
    if not phones:
        raise DataError(f"pocketsphinx found no phone in {text!r}")
    return [(p, round(s, 3), round(e, 3)) for p, s, e in phones]


def align_entries(entries: list[ManifestEntry], progress: bool = False) -> tuple[list[ManifestEntry], list[str]]:
    """Entries with ``phones`` from :func:`force_align` of their ``text`` (rows without text, or
    that fail, are returned unchanged); also the failures, one line each."""
    from audiolatent.core.audio import load_audio

    _decoder()  # a missing pocketsphinx is one error before the loop
    out, failures = [], []
    rows = entries
    if progress:
        from tqdm import tqdm

        rows = tqdm(entries, desc="aligning", unit="file")
    for entry in rows:
        if not entry.text:
            out.append(entry)
            continue
        audio, _ = load_audio(entry.path, sample_rate=16000, mono=True)
        try:
            phones = force_align(audio, entry.text)
        except DataError as exc:
            failures.append(f"{entry.id}: {exc}")
            warnings.warn(f"{entry.id}: {exc}", stacklevel=2)
            out.append(entry)
            continue
        out.append(replace(entry, phones=phones))
    return out, failures


def _frame_labels(phones: list[tuple[str, float, float]], n_frames: int) -> list[str | None]:
    from audiolatent.data.manifest import frame_phone_labels

    labels = frame_phone_labels(phones, n_frames, 1 / FRAME_SECONDS)
    return [None if p is None else EQUIVALENT.get(p, p) for p in labels]


def alignment_agreement(truth: list[tuple[str, float, float]], estimate: list[tuple[str, float, float]]) -> dict:
    """``{"frame_agreement", "boundary_error_ms", "frames", "boundaries"}`` of ``estimate``
    against ``truth`` (module docstring)."""
    end = min(truth[-1][2], estimate[-1][2])
    n = int(end / FRAME_SECONDS)
    a, b = _frame_labels(truth, n), _frame_labels(estimate, n)
    pairs = [(x, y) for x, y in zip(a, b) if x is not None and y is not None]
    true_edges = [s for _, s, _ in truth[1:]]
    est_edges = np.array([s for _, s, _ in estimate[1:]] or [0.0])
    errors = [float(np.min(np.abs(est_edges - t))) * 1000 for t in true_edges]
    return {
        "frame_agreement": sum(x == y for x, y in pairs) / len(pairs) if pairs else float("nan"),
        "boundary_error_ms": statistics.median(errors) if errors else float("nan"),
        "frames": len(pairs),
        "boundaries": len(errors),
    }
