"""``scripts/make_voices_corpus.py`` and ``scripts/voices_corpus_lib.py`` on tiny generated inputs.

No network, apt or festival: the parts that build rows, assign splits, flag band-limited
sources, read Debian copyright files and guard the output folder are pure; only the decoding
test needs ffmpeg and is skipped without it.
"""

from __future__ import annotations

import importlib
import json
import shutil
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from audiolatent.data import read_manifest

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"


def _load(name: str):
    """A script as a module (``scripts/`` on sys.path: make_voices_corpus imports voices_corpus_lib from there)."""
    if str(SCRIPTS) not in sys.path:
        sys.path.insert(0, str(SCRIPTS))
    return importlib.import_module(name)


lib = _load("voices_corpus_lib")
script = _load("make_voices_corpus")


def _tone(path: Path, seconds: float = 0.3, hz: float = 440.0, noise: bool = False, seed: int = 0) -> float:
    """A 16 kHz mono 16-bit FLAC: a sine (nothing above ``hz``) or white noise (energy up to 8 kHz)."""
    n = int(seconds * 16000)
    if noise:
        audio = 0.3 * np.random.default_rng(seed).standard_normal(n)
    else:
        audio = 0.5 * np.sin(2 * np.pi * hz * np.arange(n) / 16000)
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), audio.clip(-1, 1), 16000, subtype="PCM_16", format="FLAC")
    return n / 16000


def _row(root: Path, voice: str, name: str, real: bool, band: int | None, noise: bool = False) -> dict:
    path = f"audio/{voice}/{name}.flac"
    seconds = _tone(root / path, noise=noise, seed=zlib.crc32(f"{voice}/{name}".encode()))
    return {"path": path, "id": f"{voice}__{name}", "voice": voice, "language": "xx", "source": f"pkg:/{name}",
            "licence": "GPL-2", "real": real, "band_limit_hz": band, "duration": round(seconds, 6),
            "sample_rate": 16000, "split": None}


@pytest.fixture
def corpus(tmp_path):
    """Two real voices (one 8 kHz-sourced, so only a sine) and one synthetic voice, 2 files each."""
    rows = []
    for i in range(2):
        rows.append(_row(tmp_path, "fr_narrow", f"p{i}", real=True, band=lib.band_limit_hz(8000)))
        rows.append(_row(tmp_path, "zh_wide", f"s{i}", real=True, band=lib.band_limit_hz(44100), noise=True))
        rows.append(_row(tmp_path, "espeak_x", f"en{i}", real=False, band=None, noise=True))
    return tmp_path, rows


# ----------------------------------------------------------------------------- splits, band flags, manifest


def test_band_limit_flags():
    assert lib.band_limit_hz(8000) == 4000  # GSM / 8 kHz wav prompts
    assert lib.band_limit_hz(16000) is None and lib.band_limit_hz(44100) is None
    assert {v.voice: lib.band_limit_hz(v.native_rate) for v in script.REAL_VOICES} == {
        "es_co_july": 4000, "fr_armelle": 4000, "it_menardi": 4000, "zh_gcin_3": None, "zh_gcin_5": None}


def test_leave_one_voice_out(corpus):
    root, rows = corpus
    lib.assign_splits(rows, "fr_narrow")
    assert all(r["split"] in ("train", "valid") for r in rows)
    assert {r["voice"] for r in rows if r["split"] == "valid"} == {"fr_narrow"}
    assert "fr_narrow" not in {r["voice"] for r in rows if r["split"] == "train"}
    with pytest.raises(ValueError, match="not a real voice"):
        lib.assign_splits(rows, "espeak_x")  # a synthetic voice cannot be the held-out one
    with pytest.raises(ValueError, match="not a real voice"):
        lib.assign_splits(rows, "nobody")
    assert script.DEFAULT_VALID_VOICE in {v.voice for v in script.REAL_VOICES}


def test_the_heldout_set_is_a_fixed_draw_of_the_heldout_voice_only():
    rows = [{"id": f"fr__{i:03d}", "voice": "fr", "duration": 0.5 if i % 5 == 0 else 2.0, "split": "valid"} for i in range(60)]
    rows += [{"id": f"it__{i:03d}", "voice": "it", "duration": 2.0, "split": "train"} for i in range(60)]
    chosen = lib.heldout_test_rows(rows, "fr")
    assert len(chosen) == lib.HELDOUT_FILES and {r["voice"] for r in chosen} == {"fr"}
    assert all(r["split"] == "test" and r["duration"] >= 1.0 for r in chosen)  # scored as test, none too short
    assert rows[0]["split"] == "valid"  # the corpus rows are not changed
    assert [r["id"] for r in lib.heldout_test_rows(list(reversed(rows)), "fr")] == [r["id"] for r in chosen]  # order-free
    assert [r["id"] for r in chosen] != sorted(r["id"] for r in rows if r["voice"] == "fr" and r["duration"] >= 1)[:20]
    with pytest.raises(ValueError, match="fewer than"):
        lib.heldout_test_rows(rows, "fr", n=50)


def test_manifest_written_checked_and_readable(corpus):
    root, rows = corpus
    lib.assign_splits(rows, "fr_narrow")
    lib.write_manifest(rows, root / "manifest.jsonl")
    stats = lib.check_corpus(root, rows, "fr_narrow")
    assert stats["fr_narrow"]["split"] == "valid" and stats["zh_wide"]["split"] == "train"
    assert stats["fr_narrow"]["energy_above_4200hz"]["max"] < 1e-6  # a 440 Hz sine
    assert stats["zh_wide"]["energy_above_4200hz"]["median"] > 0.3  # white noise: ~47 % above 4.2 kHz
    entries = read_manifest(root / "manifest.jsonl")  # the project's reader accepts the rows
    assert [e.id for e in entries] == [r["id"] for r in rows]
    assert entries[0].extra["band_limit_hz"] == 4000 and entries[0].extra["real"] is True
    assert [json.loads(line)["split"] for line in (root / "manifest.jsonl").read_text().splitlines()] == [
        r["split"] for r in rows]


@pytest.mark.parametrize("breakage, message", [
    (lambda root, rows: rows[0].update(split="train"), "breaks leave-one-voice-out"),
    (lambda root, rows: rows[1].update(split="valid"), "breaks leave-one-voice-out"),
    (lambda root, rows: rows[3].update(band_limit_hz=None), "band_limit_hz"),
    (lambda root, rows: rows[1].update(band_limit_hz=4000) or rows[4].update(band_limit_hz=4000),
     "marked band-limited"),  # wideband noise flagged as 8 kHz-sourced
    (lambda root, rows: rows[2].update(duration=1.0), "header duration"),
    (lambda root, rows: rows[2].update(licence=""), "no licence"),
    (lambda root, rows: _tone(root / "audio" / "stray.flac"), "not in the manifest"),
])
def test_check_catches(corpus, breakage, message):
    root, rows = corpus
    lib.assign_splits(rows, "fr_narrow")
    breakage(root, rows)
    with pytest.raises(ValueError, match=message):
        lib.check_corpus(root, rows, "fr_narrow")


# ----------------------------------------------------------------------------- licences


def test_licence_of_shared_copyright_files(shared_data):
    licences = shared_data / "licences"
    asterisk = lib.parse_copyright((licences / "asterisk-core-sounds-en.copyright").read_text(encoding="utf-8"))
    assert asterisk.dep5 and asterisk.licence_for() == "CC-BY-SA-3.0"
    assert asterisk.licence_for("debian/rules") == "GPL-2+"   # the last matching stanza wins
    assert asterisk.licence_for("ru-something.gsm") == "CC-BY-3.0"
    sonic = lib.parse_copyright((licences / "sonic-pi-samples.copyright").read_text(encoding="utf-8"))
    assert sonic.licence_for() == "MIT" and sonic.licence_for("etc/samples/bd_boom.flac") == "CC0"
    # free text: public-domain and GPL-2 sections cover a few build files; "All other files" are CMU's
    flite = lib.parse_copyright((licences / "flite.copyright").read_text(encoding="utf-8"))
    assert not flite.dep5 and flite.licence_for() == "EST-style"
    for name in ("asterisk-core-sounds-en.copyright", "flite.copyright", "sonic-pi-samples.copyright"):
        assert lib.use_forbidden((licences / name).read_text(encoding="utf-8"), "sound") is None


GPL2_TEXT = """Upstream Author: Someone

Copyright:

   This package is free software; you can redistribute it and/or modify
   it under the terms of the GNU General Public License as published by
   the Free Software Foundation; version 2 dated June, 1991.
"""

DEP5_HEADER_LICENCE = """Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: voice
Copyright: 2003 Carnegie Mellon University
License: EST-2003

Files: debian/*
Copyright: 2014 Packager
License: BSD-3-clause
"""

DEP5_PER_FILE = """Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/

Files: */3.ogg
Copyright: 2014 A
License: GPL-3 or LGPL-3

Files: */5.ogg
Copyright: B
License: CC-BY-3

Files: *
Copyright: C
License: CC-SA-BY-3.0
"""


def test_licence_parsing_forms():
    assert lib.parse_copyright(GPL2_TEXT).licence_for() == "GPL-2"
    header = lib.parse_copyright(DEP5_HEADER_LICENCE)
    assert header.licence_for() == "EST-2003" and lib.package_licence(header) == "EST-2003"
    per_file = lib.parse_copyright(DEP5_PER_FILE)
    # "Files: *" comes last here, so it wins for every file (DEP-5: the last match wins)
    assert per_file.licence_for("usr/share/x/ogg/ba/3.ogg") == "CC-BY-SA-3.0"
    per_file.stanzas.append((["*/3.ogg"], "GPL-3 or LGPL-3"))
    assert per_file.licence_for("usr/share/x/ogg/ba/3.ogg") == "GPL-3 or LGPL-3"
    assert lib.normalise_licence("CC-BY-3") == "CC-BY-3.0" and lib.normalise_licence("CC-SA-BY-3.0") == "CC-BY-SA-3.0"
    assert lib.detect_licence("under the terms of the GNU Lesser General Public License as published by the "
                              "Free Software Foundation; either version 2.1 of the License, or (at your option) "
                              "any later version.") == "LGPL-2.1+"
    with pytest.raises(ValueError, match="no licence recognised"):
        lib.parse_copyright("Nothing to see here.\n").licence_for()


def test_forbidden_use():
    assert lib.use_forbidden(GPL2_TEXT, "non-free/sound") == "Debian archive area non-free"
    assert lib.use_forbidden(GPL2_TEXT, "contrib/sound").startswith("Debian archive area")
    assert "non-commercial" in lib.use_forbidden("This lexicon is free for non-commercial use only.", "sound")
    assert lib.use_forbidden("License: CC-BY-NC-SA-4.0", "sound")
    assert lib.use_forbidden("You are free to use it in commercial (and of course non-commercial systems).") is None
    assert lib.use_forbidden(GPL2_TEXT, "sound") is None
    # festlex-poslex's file says so about another package: flagged, and the script records why it is fine
    assert "festlex-poslex" in script.LICENCE_REVIEWED


# ----------------------------------------------------------------------------- output folder, tools


def test_refuses_to_overwrite(tmp_path):
    out = tmp_path / "corpus"
    lib.check_output(out, force=False)  # absent: fine
    out.mkdir()
    lib.check_output(out, force=False)  # empty: fine
    (out / "notes.txt").write_text("mine")
    with pytest.raises(SystemExit, match="not empty; pass --force"):
        script.main(["--out", str(out)])  # refused before any tool or download is looked at
    with pytest.raises(SystemExit, match="not a previous build"):
        script.main(["--out", str(out), "--force"])  # --force replaces only a build of this script
    assert (out / "notes.txt").read_text() == "mine"
    (out / "manifest.jsonl").write_text("")
    (out / "build_info.json").write_text("{}")
    lib.check_output(out, force=True)
    with pytest.raises(SystemExit, match="not empty"):
        lib.check_output(out, force=False)
    (tmp_path / "file").write_text("x")
    with pytest.raises(SystemExit, match="not a folder"):
        lib.check_output(tmp_path / "file", force=True)


def test_missing_tools_are_named(monkeypatch):
    present = {"apt-get", "dpkg-deb", "dpkg-query", "espeak-ng", "flite", "festival"}
    monkeypatch.setattr(script.shutil, "which", lambda tool: f"/usr/bin/{tool}" if tool in present else None)
    monkeypatch.setattr(script.os, "geteuid", lambda: 1000)
    with pytest.raises(SystemExit, match=r"missing tools: ffmpeg \(sudo apt-get install ffmpeg\)"):
        script.ensure_tools()
    present.discard("apt-get")
    with pytest.raises(SystemExit, match="apt-get not found"):
        script.ensure_tools()


def test_zhuyin_names_are_ascii_and_unique():
    assert script.zhuyin_name("ㄅㄧㄢ4") == "bian4" and script.zhuyin_name("ㄓㄨㄤ") == "zhuang"
    assert set(script.ZHUYIN) == {chr(c) for c in range(0x3105, 0x312A)}  # the 37 letters of the gcin names


# ----------------------------------------------------------------------------- decoding (needs ffmpeg)


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs ffmpeg to decode (apt-get install ffmpeg)")
def test_decode_real_8k_voice(tmp_path):
    prompts = tmp_path / "root" / "usr/share/asterisk/sounds/xx"
    n = 2400
    for name in ("hello", "digits/1", "beep", "silence/1"):
        (prompts / name).parent.mkdir(parents=True, exist_ok=True)
        audio = 0.4 * np.sin(2 * np.pi * 300 * np.arange(n) / 8000) if name != "silence/1" else np.zeros(n)
        sf.write(str(prompts / f"{name}.wav"), audio, 8000, subtype="PCM_16")
    spec = script.RealVoice("xx_voice", "pkg", "xx", "nobody", "usr/share/asterisk/sounds/xx", "**/*.wav", 8000)
    copyright = lib.parse_copyright(GPL2_TEXT)
    dropped: dict = {}
    out = tmp_path / "out"
    rows = script.decode_real(spec, tmp_path / "root", out, copyright, dropped)
    assert [r["id"] for r in rows] == ["xx_voice__digits__1", "xx_voice__hello"]
    assert {tuple(d)[0] for d in dropped["xx_voice"]} == {"beep", "silence/1"}
    assert all(r["band_limit_hz"] == 4000 and r["licence"] == "GPL-2" and r["real"] for r in rows)
    assert rows[0]["source"] == "pkg:/usr/share/asterisk/sounds/xx/digits/1.wav"
    assert abs(rows[0]["duration"] - n / 8000) < 1e-3
    lib.assign_splits(rows, "xx_voice")
    lib.check_corpus(out, rows, "xx_voice")  # 16 kHz FLAC, nothing above 4.2 kHz
