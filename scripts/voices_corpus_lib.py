"""The testable parts of ``scripts/make_voices_corpus.py``: licences, rows, splits, checks.

No network, apt or ffmpeg here (numpy and soundfile only), so ``tests/data/test_voices_corpus.py``
runs them on tiny generated files.

- :func:`parse_copyright` reads a Debian ``copyright`` file, machine-readable (DEP-5) or free
  text, and :meth:`Copyright.licence_for` gives the licence short name of one installed file;
  :func:`use_forbidden` says why a package must be left out (non-free, non-commercial).
- :func:`band_limit_hz` flags sources recorded at 8 kHz (4000 Hz: nothing above it).
- :func:`assign_splits` holds one real voice out (leave-one-voice-out): its rows ``valid``, all
  others ``train``.
- :func:`check_corpus` verifies a built folder against its rows (FLAC 16 kHz mono 16-bit,
  durations, unique ids, the split rule, licences, and that a band-limited voice really has
  no energy above 4.2 kHz) and returns per-voice stats.
- :func:`check_output` refuses to replace a non-empty output folder without ``--force``.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf

SAMPLE_RATE = 16000
BAND_CHECK_HZ = 4200.0  # band-limited voices: energy above this is measured ...
BAND_TOLERANCE = 1e-3   # ... and may be at most this fraction of a file's energy (soxr-upsampled GSM: ~1e-4)


# ----------------------------------------------------------------------------- licences


@dataclass
class Copyright:
    """A Debian ``copyright`` file: DEP-5 stanzas ``(patterns, licence)``, or a free-text file's main licence."""

    dep5: bool
    stanzas: list[tuple[list[str], str]] = field(default_factory=list)
    main: str | None = None
    text: str = ""

    def licence_for(self, path: str | None = None) -> str:
        """Licence short name of ``path`` (installed path, no leading /), or of the package as a whole.

        DEP-5: the last stanza whose ``Files`` pattern matches wins (``*`` matches ``/`` too);
        ``path=None`` asks for the ``Files: *`` stanza. Free text: the main licence.
        """
        if not self.dep5:
            if self.main is None:
                raise ValueError("no licence recognised in this copyright file")
            return self.main
        found = None
        for patterns, licence in self.stanzas:
            if any((p == "*") if path is None else fnmatch.fnmatchcase(path, p) for p in patterns):
                found = licence
        if found is None:
            raise ValueError(f"no Files stanza of this copyright file covers {path or '*'}")
        return found


def package_licence(copyright: Copyright) -> str:
    """One line for a package: its main (``Files: *``) licence, else every licence its stanzas name."""
    try:
        return copyright.licence_for()
    except ValueError:
        upstream = {licence for patterns, licence in copyright.stanzas
                    if not all(p.startswith("debian/") for p in patterns)}
        return " / ".join(sorted(upstream)) or "unknown"


_SCOPED = re.compile(r"^(following files?\b|files? .* (have|has) a different|\S+ is licensed under|"
                     r".*debian packag|this debian package|files: debian)", re.I)
_MAIN = re.compile(r"^(all other files|the rest of upstream)", re.I)
_FORBIDDEN = re.compile(r"\bCC-BY(-SA)?-NC|(restricted (to|for)|only for|for) non-?commercial (use|purposes)|"
                        r"non-?commercial (use|purposes) only|not for commercial|no commercial use|"
                        r"research purposes only|for non-profit use only", re.I)


def normalise_licence(name: str) -> str:
    """Debian's short names, with Creative Commons ones spelled the SPDX way (``CC-SA-BY-3.0`` -> ``CC-BY-SA-3.0``)."""
    name = " ".join(name.split())
    name = re.sub(r"\bCC-SA-BY\b", "CC-BY-SA", name)
    return re.sub(r"\b(CC-BY(?:-SA)?)-(\d)(?![.\d])", r"\1-\2.0", name)


def detect_licence(paragraph: str) -> str | None:
    """Short name of the licence a free-text paragraph grants, or None."""
    text = " ".join(paragraph.split())
    gnu = re.search(r"GNU (Lesser |Library )?General Public License", text)
    if gnu and re.search(r"(terms|under) .{0,40}GNU|GNU .{0,80}(version|v\d)", text):
        version = re.search(r"version (\d+(?:\.\d+)?)", text)
        plus = "+" if re.search(r"any later version|or later", text) else ""
        return ("LGPL" if gnu.group(1) else "GPL") + (f"-{version.group(1)}{plus}" if version else "")
    if re.search(r"Redistribution and use.{0,80}permitted", text, re.I):
        return "BSD-style"
    if re.search(r"Permission is hereby granted, free of charge, to use and distribute", text):
        return "EST-style"  # the Edinburgh Speech Tools / festvox / flite licence (Debian: EST-2000)
    if re.search(r"\bpublic domain\b", text, re.I):
        return "public-domain"
    return None


def parse_copyright(text: str) -> Copyright:
    """Read a Debian ``copyright`` file: machine-readable (DEP-5) stanzas, else the main licence of free text.

    Free text: paragraphs introduced as covering some files only ("Following files are ...",
    "X is licensed under", the Debian packaging) are skipped until one that covers the rest
    ("All other files", "The rest of upstream ..."); the first licence found outside them is the main one.
    """
    paragraphs = [p for p in re.split(r"\n\s*\n", text) if p.strip()]
    if paragraphs and re.match(r"Format:\s*\S*copyright-format", paragraphs[0]):
        stanzas = []
        header_licence = re.search(r"^License:[ \t]*(\S.*)$", paragraphs[0], re.M)
        if header_licence and not re.search(r"^Files:", paragraphs[0], re.M):  # a header License covers the package
            stanzas.append((["*"], normalise_licence(header_licence.group(1))))
        for para in paragraphs:  # the header has no Files field (unless a stanza is glued to it)
            files = re.search(r"^Files:(.*(?:\n[ \t].*)*)", para, re.M)
            licence = re.search(r"^License:[ \t]*(\S.*)$", para, re.M)
            if files and licence:
                stanzas.append((files.group(1).split(), normalise_licence(licence.group(1))))
        return Copyright(dep5=True, stanzas=stanzas, text=text)
    main, scoped = None, False
    for para in paragraphs:
        first = para.strip()
        if _MAIN.match(first):
            scoped = False
        elif _SCOPED.match(first):
            scoped = True
        if not scoped and main is None:
            main = detect_licence(para)
    return Copyright(dep5=False, main=main, text=text)


def use_forbidden(copyright_text: str, section: str = "") -> str | None:
    """Why a package may not be used (non-free/contrib archive area, a non-commercial licence), or None.

    Deliberately suspicious: any sentence restricting commercial use flags the package, even one
    about another package; a person then reads the file (the script's LICENCE_REVIEWED).
    """
    area = section.split("/")[0] if "/" in section else ""
    if area in ("non-free", "non-free-firmware", "contrib"):
        return f"Debian archive area {area}"
    hit = _FORBIDDEN.search(copyright_text)
    return f"licence text says {hit.group(0)!r}" if hit else None


# ----------------------------------------------------------------------------- rows, splits, checks


def band_limit_hz(native_rate: int) -> int | None:
    """4000 for a source recorded at 8 kHz (nothing above its Nyquist frequency), None for wideband ones."""
    return native_rate // 2 if native_rate < SAMPLE_RATE else None


def assign_splits(rows: list[dict], valid_voice: str) -> None:
    """Leave one voice out: every row of ``valid_voice`` is ``valid``, every other row ``train`` (in place)."""
    real = {r["voice"] for r in rows if r["real"]}
    if valid_voice not in real:
        raise ValueError(f"--valid-voice {valid_voice!r} is not a real voice of this corpus (one of {sorted(real)})")
    for r in rows:
        r["split"] = "valid" if r["voice"] == valid_voice else "train"


HELDOUT_FILES = 20  # files of the held-out voice that the quality tables score (benchmarks/default_codec_quality.py --heldout)
HELDOUT_SALT = "voices-corpus-heldout:"


def heldout_test_rows(rows: list[dict], valid_voice: str, n: int = HELDOUT_FILES, min_seconds: float = 1.0) -> list[dict]:
    """The held-out voice's evaluation set: ``n`` of its rows of at least ``min_seconds``, the first in
    the order of ``sha1(HELDOUT_SALT + id)`` (a fixed draw, not the best-sounding files), marked
    ``"split": "test"`` so that a bench scores them. Written as ``heldout_<language>_test.jsonl``."""
    import hashlib

    pool = [r for r in rows if r["voice"] == valid_voice and r["duration"] >= min_seconds]
    if len(pool) < n:
        raise ValueError(f"held-out voice {valid_voice}: {len(pool)} files of >= {min_seconds} s, fewer than {n}")
    pool.sort(key=lambda r: hashlib.sha1((HELDOUT_SALT + r["id"]).encode("utf-8")).hexdigest())
    return [{**r, "split": "test"} for r in sorted(pool[:n], key=lambda r: r["id"])]


def write_manifest(rows: list[dict], path: Path) -> None:
    with open(path, "w", encoding="utf-8") as f:
        f.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)


def energy_above(path: Path, hz: float) -> float:
    """Fraction of a file's energy above ``hz``."""
    audio, sr = sf.read(str(path), dtype="float64")
    power = np.abs(np.fft.rfft(audio)) ** 2
    freqs = np.fft.rfftfreq(len(audio), 1 / sr)
    return float(power[freqs > hz].sum() / max(power.sum(), 1e-20))


def check_corpus(root: Path, rows: list[dict], valid_voice: str, band_files_per_voice: int = 20) -> dict:
    """Verify the files under ``root`` against ``rows``; return per-voice stats. Raises ValueError listing problems.

    Checked: every file is 16 kHz mono 16-bit FLAC with the row's duration, ids are unique, no
    FLAC is left out of the manifest, every row is ``train`` or ``valid`` and ``valid`` exactly
    when its voice is ``valid_voice`` (a real voice), every row has a licence, a voice's rows
    share one ``band_limit_hz`` (None or 4000), and a band-limited voice has at most
    BAND_TOLERANCE of its energy above BAND_CHECK_HZ in each of ``band_files_per_voice`` files.
    """
    ids, problems, stats = set(), [], {}
    for r in rows:
        where, path = r.get("path", "?"), root / r.get("path", "?")
        if r.get("id") in ids:
            problems.append(f"{where}: duplicate id {r.get('id')}")
        ids.add(r.get("id"))
        if not path.is_file():
            problems.append(f"{where}: no such file")
            continue
        info = sf.info(str(path))
        if (info.format, info.subtype, info.channels, info.samplerate) != ("FLAC", "PCM_16", 1, SAMPLE_RATE):
            problems.append(f"{where}: not 16 kHz mono 16-bit FLAC")
        if abs(info.frames / info.samplerate - r.get("duration", -1)) > 1e-6:
            problems.append(f"{where}: header duration {info.frames / info.samplerate} != row {r.get('duration')}")
        if r.get("split") not in ("train", "valid") or (r["split"] == "valid") != (r["voice"] == valid_voice):
            problems.append(f"{where}: split {r.get('split')!r} breaks leave-one-voice-out ({valid_voice} = valid)")
        if r["split"] == "valid" and not r.get("real"):
            problems.append(f"{where}: the validation voice must be a real voice")
        if not r.get("licence"):
            problems.append(f"{where}: no licence")
        s = stats.setdefault(r["voice"], {"real": r["real"], "language": r["language"], "split": r["split"],
                                          "band_limit_hz": r.get("band_limit_hz"), "licence": r.get("licence"),
                                          "files": 0, "seconds": 0.0, "bytes": 0, "_paths": []})
        if r.get("band_limit_hz") not in (None, 4000) or r.get("band_limit_hz") != s["band_limit_hz"]:
            problems.append(f"{where}: band_limit_hz {r.get('band_limit_hz')!r} (voice: {s['band_limit_hz']!r})")
        s["files"] += 1
        s["seconds"] += r["duration"]
        s["bytes"] += path.stat().st_size
        s["_paths"].append(path)
    unreferenced = set(root.rglob("*.flac")) - {root / r.get("path", "?") for r in rows}
    if unreferenced:
        problems.append(f"{len(unreferenced)} FLAC files not in the manifest, e.g. {sorted(unreferenced)[0]}")
    if not any(r.get("split") == "valid" for r in rows):
        problems.append(f"no row of the validation voice {valid_voice}")
    for voice, s in stats.items():
        paths = sorted(s.pop("_paths"), key=lambda p: hashlib.sha1(p.name.encode()).hexdigest())[:band_files_per_voice]
        fractions = [energy_above(p, BAND_CHECK_HZ) for p in paths]
        s["energy_above_4200hz"] = {"median": float(np.median(fractions)), "max": float(np.max(fractions))}
        if s["band_limit_hz"] and s["energy_above_4200hz"]["max"] > BAND_TOLERANCE:
            problems.append(f"{voice}: marked band-limited but {s['energy_above_4200hz']['max']:.2%} of a file's "
                            f"energy is above {BAND_CHECK_HZ:g} Hz")
    if problems:
        raise ValueError(f"corpus check failed ({len(problems)} problems):\n  " + "\n  ".join(problems[:20]))
    return stats


def check_output(out: Path, force: bool) -> None:
    """Refuse a non-empty ``out`` unless ``force``; refuse anything but a previous build even then."""
    if out.exists() and not out.is_dir():
        raise SystemExit(f"{out} exists and is not a folder")
    if not out.is_dir() or not any(out.iterdir()):
        return
    if not force:
        raise SystemExit(f"{out} exists and is not empty; pass --force to replace it")
    if not ((out / "manifest.jsonl").is_file() and (out / "build_info.json").is_file()):
        raise SystemExit(f"{out} is not a previous build of this script (no manifest.jsonl + build_info.json); "
                         "refusing to replace it even with --force")
