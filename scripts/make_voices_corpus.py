"""Build a training corpus of several real and synthetic voices from Debian packages (issue 19).

Sources (Debian bookworm main only, versions pinned in PACKAGES; ``build_info.json`` records
what was used, with the sha256 of every .deb):

- real voices, decoded to 16 kHz mono 16-bit FLAC:
  ``gcin-voice`` (Mandarin syllables, two speakers: ``*/3.ogg`` and ``*/5.ogg``, 44.1 kHz Ogg),
  ``asterisk-prompt-es-co`` (Colombian Spanish, GSM 8 kHz), ``asterisk-prompt-fr-armelle``
  (French, GSM 8 kHz), ``asterisk-prompt-it-menardi-wav`` (Italian, 8 kHz wav). The 8 kHz
  sources hold nothing above 4 kHz: their rows say ``"band_limit_hz": 4000``, so a training
  loss can be masked above 4 kHz for them (it must not teach the codec to drop 4-8 kHz).
- synthetic voices for range of pitch and timbre: espeak-ng (voice variants and pitches),
  flite's built-in voices with their mean F0 moved (``int_f0_target_mean``), and the festvox-*
  voices that festival can drive with text we have (English, Italian, Czech; see NOT_USED for
  the others). They speak the English transcripts of ``../shared/data/speech_real`` (train
  split only, so no test sentence is ever synthesised) and ``voices_corpus_sentences.txt``.

Leave-one-voice-out: every row of one real voice (``--valid-voice``, default ``fr_armelle``) is
``"split": "valid"``, every other row ``"train"``. French Armelle is the default because it has
enough material to validate on (327 prompts, 15 min: whole sentences, not syllables) while the
largest real voice (Italian, 25 min) and the only wideband real voices (gcin) stay in training.
It is band-limited like the 8 kHz training voices, so validation losses must be masked above
4 kHz too. The built-in ``speech_real`` voice (Allison) is not copied here: a training recipe
lists both manifests (``--data ../shared/data/speech_real/manifest.jsonl --data
/work/voices_corpus/manifest.jsonl``); its test files stay what the figures are measured on.

Licences: each package's Debian ``copyright`` file is read (:func:`parse_copyright`), the
licence of every row recorded, and a package from non-free/contrib or whose licence text forbids
commercial use is left out (:func:`use_forbidden`). The files are copied to ``licences/``.

Decoding: ffmpeg with the soxr resampler (ffmpeg's default swr leaks ten times more of an 8 kHz
source's energy above 4 kHz), FLAC written bit-exact without metadata.

Beside manifest.jsonl it writes ``heldout_<language>_test.jsonl`` (``heldout_fr_test.jsonl``): 20 files of
the held-out voice, a fixed draw, as ``"split": "test"``: what the quality tables score on that voice.

Usage (root: installs missing ffmpeg/espeak-ng/flite/festival with apt-get, as make_data.sh;
about 7 minutes on 2 cores, one process at a time)::

    nice -n 10 .venv/bin/python scripts/make_voices_corpus.py --out /work/voices_corpus [--force]
        [--valid-voice fr_armelle] [--debs DIR] [--shared ../shared/data]

The build happens in a staging folder beside ``--out``, which replaces ``--out`` only when every
check passed (:func:`check_corpus`). An existing non-empty ``--out`` is refused unless
``--force``, and even then only if it holds a previous build (manifest.jsonl + build_info.json).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(REPO / "scripts"))

import numpy as np  # noqa: E402
import soundfile as sf  # noqa: E402
from voices_corpus_lib import (  # noqa: E402
    SAMPLE_RATE,
    Copyright,
    assign_splits,
    band_limit_hz,
    check_corpus,
    check_output,
    heldout_test_rows,
    package_licence,
    parse_copyright,
    use_forbidden,
    write_manifest,
)

from audiolatent.core.atomic import atomic_dir  # noqa: E402

DEFAULT_VALID_VOICE = "fr_armelle"
MIN_DUR_S = 0.1                # real: drop decodes shorter than this (gcin syllables start at 0.13 s)
SILENT_PEAK = 10 ** (-50 / 20)  # real: drop decodes whose peak is below -50 dBFS
SYNTH_BUDGET_S = 70.0          # per synthetic voice: stop adding sentences once this much audio exists
SYNTH_MAX_LINE_S = 12.0        # synthetic: skip a sentence longer than this
EN_MAX_LINE_S = 10.0           # speech_real transcripts: only lines whose recording is at most this
MAX_TOTAL_BYTES = 150_000_000
SELECT_SALT = "voices-corpus:"

PACKAGES = {  # name -> pinned version (bookworm main)
    "gcin-voice": "0~20170223-3",
    "asterisk-prompt-es-co": "0.20070403-2.1",
    "asterisk-prompt-fr-armelle": "20070613-2.2",
    "asterisk-prompt-it-menardi-wav": "1:1.4.22+mm20110907-3.1",
    "festvox-kallpc16k": "2.4-1",
    "festvox-kdlpc16k": "1.4.0-6.1",
    "festvox-us-slt-hts": "0.2010.10.25-4",
    "festvox-italp16k": "2.0+debian0-6",
    "festvox-itapc16k": "2.0+debian0-6",
    "festvox-czech-krb": "1.0.0-5",
    "festvox-czech-dita": "1.0.0-5",
    "festvox-czech-machac": "1.0.0-5",
    "festlex-cmu": "2.4-2",       # English lexicon of the English festvox voices
    "festlex-poslex": "2.4-1",    # English part-of-speech lexicon
    "festlex-ifd": "2.0+debian0-6",  # Italian front end and lexicon
    "festival-czech": "0.3-6",    # Czech front end and lexicon
}
FESTIVAL_FRONT_ENDS = {"en": ("festlex-cmu", "festlex-poslex"), "it": ("festlex-ifd",), "cs": ("festival-czech",)}
TOOLS = {"ffmpeg": "ffmpeg", "espeak-ng": "espeak-ng", "flite": "flite", "festival": "festival"}
TOOL_PACKAGES = ("espeak-ng-data", "libflite1", "festival")  # their copyright files are kept too
LICENCE_NOTES = {
    "asterisk-prompt-it-menardi-wav": "Creative Commons Attribuzione - Condividi allo stesso modo 3.0 Italia (Debian "
    "spells it CC-SA-BY-3.0). The authors ask that end users be shown that the sound files were made by Marco "
    "Menardi and Paola Dal Zot, with http://www.voip.ammdomus.it",
    "asterisk-prompt-fr-armelle": "BSD-style: keep the notice (C) 2006 Michel Gutierrez; voice actor Armelle "
    "Desjardins; no endorsement",
    "asterisk-prompt-es-co": "GPL-2: (C) 2006 Avatar Ltda., voice of July E. Jimenez",
    "gcin-voice": "*/3.ogg (zh_gcin_3): GPL-3 or LGPL-3, (C) 2014 Edward Der-Hua Liu; */5.ogg (zh_gcin_5): "
    "CC-BY-3.0, ChionMeilin with the vocal source from Chu Lo",
    "synthetic text": "text_licence of each row: CC-BY-SA-3.0 for speech_real transcripts (Asterisk prompt "
    "script, Allison Smith / Digium), MIT for scripts/voices_corpus_sentences.txt",
}
LICENCE_REVIEWED = {  # packages that use_forbidden() flags, with why the flag does not apply
    "festlex-poslex": "the 'free for non-commercial use only' sentence is about festlex_OALD, which is not in this "
    "package; the file itself adds '(ignore the above, it doesn't pertain to POSLEX itself)'. POSLEX is under the "
    "CSTR free licence (EST-style)",
}
TOOL_LICENCE_NOTES = {
    "festival": "its copyright says some Festival voices (British ones using the OALD lexicon, a Spanish one) are "
    "restricted to non-commercial use; none of those is in Debian main or used here",
}
NOT_USED = {
    "festvox-kallpc8k": "8 kHz copy of kal_diphone, which is used at 16 kHz",
    "festvox-kdlpc8k": "8 kHz copy of ked_diphone, which is used at 16 kHz",
    "festvox-ru": "a 179 MB .deb, more than this whole corpus; needs Russian text",
    "festvox-czech-ph": "a fourth Czech voice (male, like machac) adds little range",
    "festvox-suopuhe-lj": "Finnish: its front end (festvox-suopuhe-common) is not wired up here",
    "festvox-suopuhe-mv": "Finnish: as festvox-suopuhe-lj",
    "festvox-ca-ona-hts": "Catalan: needs the festival-ca front end and Catalan text",
    "festvox-hi-nsk": "Hindi: needs text in Devanagari",
    "festvox-mr-nsk": "Marathi: needs text in Devanagari",
    "festvox-te-nsk": "Telugu: needs text in Telugu script",
}


@dataclass(frozen=True)
class RealVoice:
    voice: str
    package: str
    language: str
    speaker: str
    folder: str           # installed folder of the recordings
    pattern: str          # glob below ``folder``
    native_rate: int      # Hz of the source files
    input_format: str | None = None  # ffmpeg -f for headerless files


REAL_VOICES = (
    RealVoice("es_co_july", "asterisk-prompt-es-co", "es-CO", "July E. Jiménez (Avatar Ltda.)",
              "usr/share/asterisk/sounds/es", "**/*.gsm", 8000, "gsm"),
    RealVoice("fr_armelle", "asterisk-prompt-fr-armelle", "fr-FR", "Armelle Desjardins",
              "usr/share/asterisk/sounds/fr", "**/*.gsm", 8000, "gsm"),
    RealVoice("it_menardi", "asterisk-prompt-it-menardi-wav", "it-IT", "Paola Dal Zot (prompts by Marco Menardi)",
              "usr/share/asterisk/sounds/it_IT_f_Menardi", "**/*.wav", 8000),
    RealVoice("zh_gcin_3", "gcin-voice", "cmn", "Edward Der-Hua Liu", "usr/share/gcin-voice/ogg", "*/3.ogg", 44100),
    RealVoice("zh_gcin_5", "gcin-voice", "cmn", "Chu Lo (ChionMeilin)", "usr/share/gcin-voice/ogg", "*/5.ogg", 44100),
)
# tones, beeps, silence and monkeys among the Asterisk prompts (as ../shared/data drops them)
NON_SPEECH = {"beep", "beeperr", "ascending-2tone", "descending-2tone", "confbridge-join",
              "confbridge-leave", "tt-monkeys"}


@dataclass(frozen=True)
class SynthVoice:
    voice: str
    engine: str           # espeak-ng | flite | festival
    language: str         # en | it | cs: the sentence pool
    name: str             # espeak voice+variant, flite voice, festival voice
    args: tuple = ()      # extra command-line arguments (espeak-ng, flite)
    package: str | None = None  # festival: the festvox package
    encoding: str = "latin-1"   # festival: the text encoding its front end expects


SYNTH_VOICES = (
    SynthVoice("espeak_en-us_m3_p25", "espeak-ng", "en", "en-us+m3", ("-p", "25", "-s", "150")),
    SynthVoice("espeak_en-us_f3_p70", "espeak-ng", "en", "en-us+f3", ("-p", "70", "-s", "160")),
    SynthVoice("espeak_en-gb_f5_p90", "espeak-ng", "en", "en-gb+f5", ("-p", "90", "-s", "150")),
    SynthVoice("espeak_en-sc_m1_p45", "espeak-ng", "en", "en-gb-scotland+m1", ("-p", "45", "-s", "170")),
    SynthVoice("espeak_en-rp_m7_p55", "espeak-ng", "en", "en-gb-x-rp+m7", ("-p", "55", "-s", "140")),
    SynthVoice("espeak_en-us_f1_p99", "espeak-ng", "en", "en-us+f1", ("-p", "99", "-s", "165")),
    SynthVoice("espeak_it_f2_p60", "espeak-ng", "it", "it+f2", ("-p", "60", "-s", "150")),
    SynthVoice("espeak_cs_m2_p35", "espeak-ng", "cs", "cs+m2", ("-p", "35", "-s", "150")),
    SynthVoice("flite_slt_f0-240", "flite", "en", "slt", ("--setf", "int_f0_target_mean=240")),
    SynthVoice("flite_slt_f0-140", "flite", "en", "slt", ("--setf", "int_f0_target_mean=140")),
    SynthVoice("flite_awb_f0-180", "flite", "en", "awb", ("--setf", "int_f0_target_mean=180")),
    SynthVoice("flite_kal16_f0-80", "flite", "en", "kal16", ("--setf", "int_f0_target_mean=80")),
    SynthVoice("festival_kal_diphone", "festival", "en", "kal_diphone", package="festvox-kallpc16k"),
    SynthVoice("festival_ked_diphone", "festival", "en", "ked_diphone", package="festvox-kdlpc16k"),
    SynthVoice("festival_slt_hts", "festival", "en", "cmu_us_slt_arctic_hts", package="festvox-us-slt-hts"),
    SynthVoice("festival_it_lp", "festival", "it", "lp_diphone", package="festvox-italp16k"),
    SynthVoice("festival_it_pc", "festival", "it", "pc_diphone", package="festvox-itapc16k"),
    SynthVoice("festival_cs_krb", "festival", "cs", "czech_krb", package="festvox-czech-krb", encoding="iso-8859-2"),
    SynthVoice("festival_cs_dita", "festival", "cs", "czech_dita", package="festvox-czech-dita", encoding="iso-8859-2"),
    SynthVoice("festival_cs_machac", "festival", "cs", "czech_machac", package="festvox-czech-machac",
               encoding="iso-8859-2"),
)

# Zhuyin (bopomofo) letters -> Latin letters, for ASCII file names of the gcin syllables
ZHUYIN = dict(zip("ㄅㄆㄇㄈㄉㄊㄋㄌㄍㄎㄏㄐㄑㄒㄓㄔㄕㄖㄗㄘㄙㄚㄛㄜㄝㄞㄟㄠㄡㄢㄣㄤㄥㄦㄧㄨㄩ",
                  "b p m f d t n l g k h j q x zh ch sh r z c s a o e eh ai ei ao ou an en ang eng er i u v".split()))


def zhuyin_name(syllable: str) -> str:
    """ASCII name of a gcin syllable folder: ``ㄅㄧㄢ4`` -> ``bian4``."""
    return "".join(ZHUYIN.get(ch, ch) for ch in syllable)


def log(*parts) -> None:
    print("[voices_corpus]", *parts, file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------- tools


def run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, check=True, capture_output=True, **kw)


def ensure_tools() -> dict[str, str]:
    """Install missing tools with apt-get when root (as make_data.sh); else stop with the command to run."""
    for tool in ("apt-get", "dpkg-deb", "dpkg-query"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} not found: this script needs Debian's apt and dpkg (bookworm)")
    missing = [pkg for tool, pkg in TOOLS.items() if shutil.which(tool) is None]
    if missing and os.geteuid() == 0:
        log(f"installing {' '.join(missing)}")
        subprocess.run(["apt-get", "update", "-q"], check=True)
        subprocess.run(["apt-get", "install", "-y", "-q", "--no-install-recommends", *missing], check=True,
                       env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
    elif missing:
        raise SystemExit(f"missing tools: {' '.join(missing)} (sudo apt-get install {' '.join(missing)})")
    versions = {}
    for pkg in ("ffmpeg", "espeak-ng", "espeak-ng-data", "flite", "libflite1", "festival"):
        versions[pkg] = run(["dpkg-query", "-W", "-f=${Version}", pkg], text=True).stdout
    versions["ffmpeg_banner"] = run(["ffmpeg", "-version"], text=True).stdout.splitlines()[0]
    return versions


def fetch_debs(debs: Path) -> list[dict]:
    """``apt-get download`` each pinned package into ``debs`` (reusing a .deb already there)."""
    fetched, updated = [], False
    for name, version in PACKAGES.items():
        have = sorted(debs.glob(f"{name}_*.deb"))
        pinned = True
        if not have:
            spec = f"{name}={version}"
            ok = subprocess.run(["apt-get", "download", "-q", spec], cwd=debs, capture_output=True).returncode == 0
            if not ok and not updated:
                log("apt-get update")
                subprocess.run(["apt-get", "update", "-q"], check=True, capture_output=True)
                updated = True
                ok = subprocess.run(["apt-get", "download", "-q", spec], cwd=debs, capture_output=True).returncode == 0
            if not ok:
                log(f"WARNING: {spec} is not in the archive any more; taking the current candidate")
                pinned = False
                proc = subprocess.run(["apt-get", "download", "-q", name], cwd=debs, capture_output=True, text=True)
                if proc.returncode:
                    raise SystemExit(f"apt-get download {name} failed: {proc.stderr.strip()}")
            have = sorted(debs.glob(f"{name}_*.deb"))
        deb = have[-1]
        field_of = lambda f: run(["dpkg-deb", "-f", str(deb), f], text=True).stdout.strip()  # noqa: E731
        got = field_of("Version")
        fetched.append({"package": field_of("Package"), "version": got, "pinned": pinned and got == version,
                        "section": field_of("Section"), "sha256": hashlib.sha256(deb.read_bytes()).hexdigest(),
                        "deb": str(deb)})
    return fetched


def to_flac(src: Path, dst: Path, input_format: str | None = None) -> float:
    """Decode anything ffmpeg reads to 16 kHz mono 16-bit FLAC (soxr, bit-exact, no metadata); return seconds."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    fmt = ["-f", input_format] if input_format else []
    # soxr, not ffmpeg's default swr: swr's transition band leaves up to 0.13 % of an 8 kHz source's
    # energy above 4.2 kHz once upsampled (soxr: 0.013 %), which would blur the band_limit_hz flag
    run(["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y", *fmt, "-i", str(src),
         "-af", "aresample=resampler=soxr", "-ar", str(SAMPLE_RATE), "-ac", "1",
         "-map_metadata", "-1", "-fflags", "+bitexact", "-flags:a", "+bitexact",
         "-c:a", "flac", "-sample_fmt", "s16", "-compression_level", "8", str(dst)])
    info = sf.info(str(dst))
    return info.frames / info.samplerate


# ----------------------------------------------------------------------------- real voices


def decode_real(spec: RealVoice, root: Path, out: Path, copyright: Copyright, dropped: dict) -> list[dict]:
    """Decode one real voice's recordings into ``out/audio/VOICE/``; rows with ``split`` still None."""
    folder = root / spec.folder
    rows = []
    for src in sorted(folder.glob(spec.pattern)):
        rel = src.relative_to(folder).with_suffix("").as_posix()
        if spec.package == "gcin-voice":
            rel = src.parent.name
        if rel in NON_SPEECH or rel.startswith("silence/"):
            dropped.setdefault(spec.voice, []).append([rel, "non-speech"])
            continue
        name = zhuyin_name(rel) if spec.package == "gcin-voice" else rel.replace("/", "__")
        dst = out / "audio" / spec.voice / f"{name}.flac"
        seconds = to_flac(src, dst, spec.input_format)
        if spec.input_format == "gsm":  # raw GSM 06.10: 33 bytes per 160 samples at 8 kHz
            expect = src.stat().st_size // 33 * 160 / 8000
            if abs(seconds - expect) > 0.002:
                raise RuntimeError(f"{src}: decoded {seconds:.4f} s, but its size says {expect:.4f} s")
        peak = float(np.abs(sf.read(str(dst), dtype="float32")[0]).max())
        if seconds < MIN_DUR_S or peak < SILENT_PEAK:
            dst.unlink()
            dropped.setdefault(spec.voice, []).append([rel, f"{seconds:.3f} s, peak {peak:.4f}"])
            continue
        row = {"path": dst.relative_to(out).as_posix(), "id": f"{spec.voice}__{name}"}
        if spec.package == "gcin-voice":
            row["text"] = rel  # the Zhuyin syllable, with the package's tone digit
        row.update({"voice": spec.voice, "language": spec.language,
                    "source": f"{spec.package}:/{src.relative_to(root).as_posix()}",
                    "licence": copyright.licence_for(src.relative_to(root).as_posix()),
                    "real": True, "band_limit_hz": band_limit_hz(spec.native_rate),
                    "duration": round(seconds, 6), "sample_rate": SAMPLE_RATE, "split": None})
        rows.append(row)
    return rows


# ----------------------------------------------------------------------------- synthetic voices


def sentence_pools(shared: Path) -> dict[str, list[tuple[str, str, str, str]]]:
    """Per language: ``(key, text, text_source, text_licence)``; English adds speech_real's train transcripts."""
    pools: dict[str, list] = {}
    counts: dict[str, int] = {}
    for line in (REPO / "scripts" / "voices_corpus_sentences.txt").read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        lang, text = line.split("\t", 1)
        counts[lang] = counts.get(lang, 0) + 1
        key = f"{lang}{counts[lang]:02d}"
        pools.setdefault(lang, []).append((key, text.strip(), f"voices_corpus_sentences.txt:{key}", "MIT"))
    pools.setdefault("en", [])
    manifest = shared / "speech_real" / "manifest.jsonl"
    if not manifest.is_file():
        raise SystemExit(f"{manifest} not found (pass --shared /path/to/shared/data)")
    for line in manifest.read_text(encoding="utf-8").splitlines():
        r = json.loads(line)
        if r["split"] == "train" and r.get("text") and r["duration"] <= EN_MAX_LINE_S:
            pools["en"].append((r["id"], r["text"], f"speech_real:{r['id']}", "CC-BY-SA-3.0"))
    return pools


def _scheme_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def synth_batch(spec: SynthVoice, items: list[tuple[str, str]], tmp: Path, festival_root: Path) -> list[Path]:
    """Synthesise ``(key, text)`` items to wav files in ``tmp``; one festival process per batch."""
    wavs = [tmp / f"{spec.voice}__{key}.wav" for key, _ in items]
    if spec.engine == "espeak-ng":
        for (_, text), wav in zip(items, wavs):
            run(["espeak-ng", "-v", spec.name, *spec.args, "-w", str(wav)], input=text.encode("utf-8"))
    elif spec.engine == "flite":
        for (_, text), wav in zip(items, wavs):
            run(["flite", "-voice", spec.name, *spec.args, "-t", text, "-o", str(wav)])
    else:
        fest = festival_root.as_posix()
        # festival's init loads pos.scm before this script runs, so it finds the POS lexicon only where a
        # system festlex-poslex would put it: load it again from the unpacked dicts
        lines = [f'(set! lexdir "{fest}/dicts/")', "(set! pos_model_dir lexdir)", '(load (path-append datadir "pos.scm"))',
                 f'(set! load-path (append (list "{fest}/" "{fest}/italian_scm/") load-path))',
                 f'(set! voice-path (list "{fest}/voices/"))', "(set! voice-locations nil)"]
        # the Czech voices hard-code /usr/share/festival; their index variables are defvar'd, so set them first
        for group in sorted((festival_root / "voices" / "czech").glob("czech_*/group/*.group")):
            lines.append(f'(defvar {group.parent.parent.name.replace("_", "-")}-unisyn-index "{group.as_posix()}")')
        lines += ["(search-for-voices)", f"(voice_{spec.name})"]
        for (_, text), wav in zip(items, wavs):
            lines.append(f"(set! utt (Utterance Text {_scheme_string(text)}))(utt.synth utt)"
                         f"(utt.save.wave utt {_scheme_string(str(wav))} 'riff)")
        script = tmp / f"{spec.voice}.scm"
        script.write_bytes("\n".join(lines).encode(spec.encoding) + b"\n")
        # cwd: festival-czech looks for its lexicon in "." before /usr/share/festival
        run(["festival", "--batch", str(script)], cwd=festival_root)
    missing = [w for w in wavs if not w.is_file()]
    if missing:
        raise RuntimeError(f"{spec.engine} {spec.name} wrote no {missing[0].name}")
    return wavs


def synthesise(spec: SynthVoice, pool: list, tmp: Path, out: Path, festival_root: Path, licence: str,
               budget_s: float) -> list[dict]:
    """Sentences in the order of sha1(salt + voice + key), each kept while the voice has under ``budget_s``."""
    order = sorted(pool, key=lambda item: hashlib.sha1(f"{SELECT_SALT}{spec.voice}:{item[0]}".encode()).hexdigest())
    if spec.engine == "festival":  # unencodable text (a stray symbol in a transcript) is skipped, not mangled
        order = [item for item in order if _encodes(item[1], spec.encoding)]
    rows, total, batch = [], 0.0, 12
    for start in range(0, len(order), batch):
        if total >= budget_s:
            break
        chunk = order[start:start + batch]
        wavs = synth_batch(spec, [(key, text) for key, text, _, _ in chunk], tmp, festival_root)
        for (key, text, text_source, text_licence), wav in zip(chunk, wavs):
            dst = out / "audio" / spec.voice / f"{key}.flac"
            seconds = to_flac(wav, dst)
            wav.unlink()
            if total >= budget_s or seconds > SYNTH_MAX_LINE_S:
                dst.unlink()
                continue
            total += seconds
            source = f"{spec.engine}:{spec.package + ':' if spec.package else ''}{spec.name} {' '.join(spec.args)}"
            rows.append({"path": dst.relative_to(out).as_posix(), "id": f"{spec.voice}__{key}", "text": text,
                         "voice": spec.voice, "language": spec.language, "source": source.strip(),
                         "licence": licence, "real": False, "band_limit_hz": None, "duration": round(seconds, 6),
                         "sample_rate": SAMPLE_RATE, "split": None,
                         "text_source": text_source, "text_licence": text_licence})
    return rows


def _encodes(text: str, encoding: str) -> bool:
    try:
        text.encode(encoding)
        return True
    except UnicodeEncodeError:
        return False


# ----------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="output folder (e.g. /work/voices_corpus)")
    parser.add_argument("--force", action="store_true", help="replace a previous build in --out")
    parser.add_argument("--valid-voice", default=DEFAULT_VALID_VOICE, choices=[v.voice for v in REAL_VOICES],
                        help="the real voice held out for validation (default: %(default)s)")
    parser.add_argument("--debs", type=Path, help="folder of .debs to reuse; missing ones are downloaded into it")
    parser.add_argument("--shared", type=Path, default=REPO.parent / "shared" / "data",
                        help="the shared data corpus (for the speech_real transcripts)")
    parser.add_argument("--synth-budget", type=float, default=SYNTH_BUDGET_S, help="seconds per synthetic voice")
    args = parser.parse_args(argv)
    started = time.time()
    out = args.out.resolve()
    check_output(out, args.force)
    tools = ensure_tools()
    pools = sentence_pools(args.shared.resolve())

    with tempfile.TemporaryDirectory(prefix="voices_corpus_work.") as work_dir:
        work = Path(work_dir)
        debs = args.debs.resolve() if args.debs else work / "debs"
        debs.mkdir(parents=True, exist_ok=True)
        packages = fetch_debs(debs)
        root, tmp = work / "root", work / "tmp"
        tmp.mkdir()
        for p in packages:  # one tree, as a chroot would have it: festival finds voices and lexicons together
            run(["dpkg-deb", "-x", p.pop("deb"), str(root)])
        log("packages: " + " ".join(f"{p['package']}={p['version']}" for p in packages))

        with atomic_dir(out, may_replace=lambda _: True) as stage:
            (stage / "licences").mkdir()
            copyrights, excluded, flag_notes = {}, [], {}
            for name, section in [(p["package"], p["section"]) for p in packages] + [(t, "") for t in TOOL_PACKAGES]:
                src = (root if name in PACKAGES else Path("/")) / "usr/share/doc" / name / "copyright"
                text = src.read_text(encoding="utf-8", errors="replace")
                shutil.copyfile(src, stage / "licences" / f"{name}.copyright")
                copyrights[name] = parse_copyright(text)
                reason = use_forbidden(text, section)
                if reason and name in LICENCE_REVIEWED:  # flagged, read by a person, and found not to apply
                    flag_notes[name] = f"flagged ({reason}), reviewed: {LICENCE_REVIEWED[name]}"
                elif reason and name in PACKAGES:
                    excluded.append({"package": name, "reason": reason})
                elif reason:  # a tool's file may warn about parts we do not use (festival: non-free voices)
                    flag_notes[name] = f"{reason}: {TOOL_LICENCE_NOTES.get(name, 'check what it applies to')}"
            banned = {e["package"] for e in excluded}
            for e in excluded:
                log(f"EXCLUDED {e['package']}: {e['reason']}")

            rows, dropped = [], {}
            for spec in REAL_VOICES:
                if spec.package in banned:
                    continue
                voice_rows = decode_real(spec, root, stage, copyrights[spec.package], dropped)
                log(f"{spec.voice}: {len(voice_rows)} files, {sum(r['duration'] for r in voice_rows) / 60:.2f} min")
                rows += voice_rows
            festival_root = root / "usr/share/festival"
            for spec in SYNTH_VOICES:
                data_package = spec.package or {"espeak-ng": "espeak-ng-data", "flite": "libflite1"}[spec.engine]
                needs = {data_package, *(FESTIVAL_FRONT_ENDS[spec.language] if spec.engine == "festival" else ())}
                if needs & banned:
                    log(f"{spec.voice}: skipped, it needs {', '.join(sorted(needs & banned))}")
                    continue
                voice_rows = synthesise(spec, pools[spec.language], tmp, stage, festival_root,
                                        copyrights[data_package].licence_for(), args.synth_budget)
                log(f"{spec.voice}: {len(voice_rows)} files, {sum(r['duration'] for r in voice_rows) / 60:.2f} min")
                rows += voice_rows

            assign_splits(rows, args.valid_voice)
            write_manifest(rows, stage / "manifest.jsonl")
            heldout_name = f"heldout_{args.valid_voice.split('_')[0]}_test.jsonl"  # fr_armelle -> heldout_fr_test.jsonl
            write_manifest(heldout_test_rows(rows, args.valid_voice), stage / heldout_name)
            try:
                stats = check_corpus(stage, rows, args.valid_voice)
            except ValueError as exc:
                raise SystemExit(str(exc)) from None
            for voice, pitch in median_f0(stage, rows).items():
                stats[voice]["median_f0_hz"] = pitch
            total = sum(p.stat().st_size for p in stage.rglob("*") if p.is_file())
            if total > MAX_TOTAL_BYTES:
                raise SystemExit(f"corpus is {total / 1e6:.1f} MB, over the {MAX_TOTAL_BYTES / 1e6:.0f} MB budget")
            info = {
                "packages": packages,
                "licences": {name: package_licence(c) for name, c in copyrights.items()},
                "licence_notes": {**LICENCE_NOTES, **flag_notes},
                "excluded": excluded,
                "not_used": NOT_USED,
                "tools": tools,
                "valid_voice": args.valid_voice,
                "real_voices": {v.voice: {"package": v.package, "speaker": v.speaker, "language": v.language,
                                          "native_rate": v.native_rate} for v in REAL_VOICES},
                "constants": {"SAMPLE_RATE": SAMPLE_RATE, "MIN_DUR_S": MIN_DUR_S, "SILENT_PEAK": SILENT_PEAK,
                              "SYNTH_BUDGET_S": args.synth_budget, "SYNTH_MAX_LINE_S": SYNTH_MAX_LINE_S,
                              "EN_MAX_LINE_S": EN_MAX_LINE_S, "SELECT_SALT": SELECT_SALT},
                "dropped": dropped,
                "stats": {v: {**s, "minutes": round(s["seconds"] / 60, 3)} for v, s in stats.items()},
                "minutes_per_split": {split: round(sum(r["duration"] for r in rows if r["split"] == split) / 60, 2)
                                      for split in ("train", "valid")},
                "files": len(rows),
                "minutes": round(sum(r["duration"] for r in rows) / 60, 2),
                "bytes": total,
                "build_seconds": round(time.time() - started, 1),
            }
            (stage / "build_info.json").write_text(json.dumps(info, indent=1, ensure_ascii=False) + "\n",
                                                   encoding="utf-8")
    print(render_table(info["stats"]))
    print(f"{len(rows)} files, {info['minutes']} min, {total / 1e6:.1f} MB, {info['build_seconds']} s -> {out}")
    return 0


def median_f0(root: Path, rows: list[dict], files_per_voice: int = 10) -> dict[str, float | None]:
    """Median F0 (Hz, YIN of the bench) over the voiced frames of a few files per voice: the pitch range on record."""
    import torch

    from audiolatent.bench.distortion import yin_pitch

    torch.set_num_threads(1)  # a shared 2-core machine; these are short files
    by_voice: dict[str, list[Path]] = {}
    for r in rows:
        by_voice.setdefault(r["voice"], []).append(root / r["path"])
    result = {}
    for voice, paths in by_voice.items():
        f0s = []
        for path in sorted(paths, key=lambda p: hashlib.sha1(p.name.encode()).hexdigest())[:files_per_voice]:
            f0, voiced = yin_pitch(torch.from_numpy(sf.read(str(path), dtype="float32")[0]), SAMPLE_RATE)
            f0s.append(f0[voiced.bool()].numpy())
        voiced_f0 = np.concatenate(f0s)
        result[voice] = round(float(np.median(voiced_f0)), 1) if voiced_f0.size else None
    return result


def render_table(stats: dict) -> str:
    lines = ["| voice | real | language | split | files | minutes | MB | band limit | median F0 | licence |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for voice, s in stats.items():
        lines.append(f"| `{voice}` | {'yes' if s['real'] else 'no'} | {s['language']} | {s['split']} | {s['files']} | "
                     f"{s['minutes']:.2f} | {s['bytes'] / 1e6:.1f} | {s['band_limit_hz'] or '-'} | "
                     f"{s.get('median_f0_hz') or '-'} | {s['licence']} |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
