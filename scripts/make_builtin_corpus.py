"""Build the built-in corpus (``src/audiolatent/corpus/``) from the shared data corpus.

The shared corpus (``../shared/data``, built by its ``make_data.sh`` from Debian packages) is
about 57 MB; the package ships a subset of at most MAX_TOTAL_BYTES so that ``audiolatent bench`` runs
with no arguments, its test splits encode/decode within minutes, and its modelability probes
have enough train audio that their figures hold when the data is halved (about 22 minutes of
``speech_real``; see ``docs/metrics.md``, "Data efficiency"):

- ``speech_real``: every test file and every train file;
- ``speech_aligned``: every test file (all 4 voices), plus train files up to
  SPEECH_ALIGNED_TRAIN_S seconds, taken round-robin over the voices;
- ``music``: the middle 10 s clip of each of the 2 test music-on-hold tracks and every 10 s clip of
  the 3 train tracks (16 kHz), and Sonic Pi samples of at least SONIC_PI_MIN_S seconds up to SONIC_PI_TEST_S /
  SONIC_PI_TRAIN_S seconds per split, kept at their original 44.1 kHz (the only audio above
  8 kHz in the corpus, which 24 kHz and 44.1 kHz tokenizers need to be judged on).

Files are byte-identical copies (already FLAC 16-bit mono); manifest rows are copied unchanged
(the layout below each manifest is the same, so relative paths stay valid). "Up to N seconds"
means: walk candidates in the order of sha1(SELECT_SALT + name) and take each one that still
fits. The build is deterministic; the result replaces the old folder only after every check
passed (sizes, headers, manifests readable by ``audiolatent.data.read_manifest``).

Usage (from the repository root)::

    python scripts/make_builtin_corpus.py [--shared ../shared/data] [--out src/audiolatent/corpus]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "src"))

import soundfile as sf  # noqa: E402

from audiolatent.core.atomic import atomic_dir  # noqa: E402
from audiolatent.data.manifest import read_manifest  # noqa: E402

SELECT_SALT = "audiolatent-builtin:"
SPEECH_REAL_TRAIN_S = float("inf")  # every train file: the modelability probes need the data (issue 13)
SPEECH_ALIGNED_TRAIN_S = 300.0
VOICES = ("kal16", "slt", "rms", "awb")
SONIC_PI_MIN_S = 0.5
SONIC_PI_TEST_S = 15.0
SONIC_PI_TRAIN_S = 120.0
MAX_TOTAL_BYTES = 50_000_000
LICENCE_FILES = (
    "asterisk-core-sounds-en-g722.copyright",
    "asterisk-core-sounds-en.copyright",
    "asterisk-moh-opsound-g722.copyright",
    "flite.copyright",
    "sonic-pi-samples.copyright",
)
CORPORA = ("speech_real", "speech_aligned", "music")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shared", type=Path, default=REPO.parent / "shared" / "data", help="shared data corpus folder")
    parser.add_argument("--out", type=Path, default=REPO / "src" / "audiolatent" / "corpus", help="output folder")
    args = parser.parse_args(argv)

    shared = args.shared.resolve()
    sources = {name: _read_rows(shared / name / "manifest.jsonl") for name in CORPORA}
    selected = {
        "speech_real": select_speech_real(sources["speech_real"]),
        "speech_aligned": select_speech_aligned(sources["speech_aligned"]),
        "music": select_music(sources["music"]),
    }

    ours = lambda p: all((p / c / "manifest.jsonl").is_file() for c in CORPORA) or not any(p.iterdir())  # noqa: E731
    with atomic_dir(args.out, may_replace=ours) as tmp:
        for name, rows in selected.items():
            for row in rows:
                dst = tmp / name / row["path"]
                dst.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(shared / name / row["path"], dst)
            with open(tmp / name / "manifest.jsonl", "w", encoding="utf-8") as f:
                f.writelines(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
        (tmp / "licences").mkdir()
        for lic in LICENCE_FILES:
            shutil.copyfile(shared / "licences" / lic, tmp / "licences" / lic)
        stats = check(tmp, selected)
        readme = render_readme(stats, _licence_section(shared / "README.md"), _source_packages(shared / "build_info.json"))
        (tmp / "README.md").write_text(readme, encoding="utf-8")
        total = sum(p.stat().st_size for p in tmp.rglob("*") if p.is_file())
        if total > MAX_TOTAL_BYTES:
            raise SystemExit(f"built corpus is {total / 1e6:.2f} MB, over the {MAX_TOTAL_BYTES / 1e6:.0f} MB budget")

    print(render_table(stats))
    print(f"total {total / 1e6:.2f} MB -> {args.out}")
    return 0


def _order(name: str) -> str:
    return hashlib.sha1((SELECT_SALT + name).encode("utf-8")).hexdigest()


def _fill(rows: list[dict], budget_s: float, key) -> list[dict]:
    """Rows in sha1 order of ``key(row)``, each taken while the total stays within ``budget_s``."""
    taken, total = [], 0.0
    for row in sorted(rows, key=lambda r: _order(key(r))):
        if total + row["duration"] <= budget_s:
            taken.append(row)
            total += row["duration"]
    return taken


def _keep_order(source: list[dict], chosen: list[dict]) -> list[dict]:
    ids = {id(r) for r in chosen}
    return [r for r in source if id(r) in ids]


def select_speech_real(rows: list[dict]) -> list[dict]:
    test = [r for r in rows if r["split"] == "test"]
    train = _fill([r for r in rows if r["split"] == "train"], SPEECH_REAL_TRAIN_S, key=lambda r: r["id"])
    return _keep_order(rows, test + train)


def select_speech_aligned(rows: list[dict]) -> list[dict]:
    test = [r for r in rows if r["split"] == "test"]
    train_rows = sorted((r for r in rows if r["split"] == "train"), key=lambda r: _order(r["id"]))
    per_voice = {v: [r for r in train_rows if r["voice"] == v] for v in VOICES}
    train, total = [], 0.0
    while any(per_voice.values()):
        for voice in VOICES:
            if per_voice[voice]:
                row = per_voice[voice].pop(0)
                if total + row["duration"] <= SPEECH_ALIGNED_TRAIN_S:
                    train.append(row)
                    total += row["duration"]
    return _keep_order(rows, test + train)


def select_music(rows: list[dict]) -> list[dict]:
    by_track: dict[str, list[dict]] = defaultdict(list)
    for r in rows:
        if r["path"].startswith("moh/"):
            by_track[Path(r["path"]).stem.rsplit("__", 1)[0]].append(r)
    # test tracks: their middle clip; train tracks: every clip (the probes of the bench train on them)
    moh = [r for clips in by_track.values() for r in sorted(clips, key=lambda r: r["offset"])
           if r["split"] == "train" or r is sorted(clips, key=lambda r: r["offset"])[len(clips) // 2]]
    sonic = [r for r in rows if r["path"].startswith("sonic_pi/") and r["duration"] >= SONIC_PI_MIN_S]
    stem = lambda r: Path(r["path"]).stem  # noqa: E731
    sonic_test = _fill([r for r in sonic if r["split"] == "test"], SONIC_PI_TEST_S, key=stem)
    sonic_train = _fill([r for r in sonic if r["split"] == "train"], SONIC_PI_TRAIN_S, key=stem)
    return _keep_order(rows, moh + sonic_test + sonic_train)


def check(root: Path, selected: dict[str, list[dict]]) -> list[dict]:
    """Verify every file against its row; return one stats row per (corpus, folder, split)."""
    stats: dict[tuple, dict] = {}
    for name, rows in selected.items():
        entries = read_manifest(root / name / "manifest.jsonl")
        assert len(entries) == len(rows)
        for row, entry in zip(rows, entries):
            info = sf.info(str(entry.path))
            where = f"{name}/{row['path']}"
            if (info.format, info.subtype, info.channels) != ("FLAC", "PCM_16", 1):
                raise SystemExit(f"{where}: expected FLAC PCM_16 mono, got {info.format} {info.subtype} x{info.channels}")
            if info.samplerate != row["sample_rate"] or abs(info.frames / info.samplerate - row["duration"]) > 1e-5:
                header = f"{info.frames} samples at {info.samplerate} Hz"
                raise SystemExit(f"{where}: header ({header}) disagrees with the manifest")
            if name == "speech_aligned" and not row.get("phones"):
                raise SystemExit(f"{where}: no phone alignment")
            folder = f"{name}/" + (row["path"].split("/")[0] if name == "music" else "")
            s = stats.setdefault((folder, row["split"]), {"files": 0, "seconds": 0.0, "bytes": 0, "rates": set()})
            s["files"] += 1
            s["seconds"] += row["duration"]
            s["bytes"] += entry.path.stat().st_size
            s["rates"].add(row["sample_rate"])
    def sort_key(folder_split: tuple[str, str]) -> tuple:
        folder, split = folder_split
        return CORPORA.index(folder.split("/")[0]), folder, {"test": 0, "train": 1}.get(split, 2)

    return [{"folder": folder, "split": split, **stats[folder, split]} for folder, split in sorted(stats, key=sort_key)]


def render_table(stats: list[dict]) -> str:
    lines = ["| folder | split | files | minutes | sample rate | MB |", "|---|---|---|---|---|---|"]
    for s in stats:
        rates = ", ".join(f"{r / 1000:g} kHz" for r in sorted(s["rates"]))
        minutes, mb = s["seconds"] / 60, s["bytes"] / 1e6
        lines.append(f"| `{s['folder']}` | {s['split']} | {s['files']} | {minutes:.2f} | {rates} | {mb:.2f} |")
    for split in ("test", "train"):
        rows = [s for s in stats if s["split"] == split]
        lines.append(
            f"| **all** | {split} | {sum(s['files'] for s in rows)} | {sum(s['seconds'] for s in rows) / 60:.2f} | | "
            f"{sum(s['bytes'] for s in rows) / 1e6:.2f} |"
        )
    return "\n".join(lines)


def render_readme(stats: list[dict], licence_section: str, packages: list[str]) -> str:
    return f"""# audiolatent built-in corpus

A small subset of the audiolatent data corpus, shipped inside the package so that
`audiolatent bench` and the tests run with no download. All audio is **FLAC, 16-bit, mono**.
Find the manifests from Python with `audiolatent.data.builtin_corpus("speech_real")` (or
`"speech_aligned"`, `"music"`; `builtin_corpus()` gives all three).

{render_table(stats)}

MB are audio bytes (10^6); the whole folder, licences included, is kept under {MAX_TOTAL_BYTES / 1e6:.0f} MB. The train
split is large on purpose: the bench's modelability probes are trained on it, and their figures
must not move when it is halved (`docs/metrics.md`, "Data efficiency").

- `speech_real/`: one real female voice (Allison Smith, Asterisk IVR prompts) with transcripts
  (`text`). Every test-split and every train-split file of the source corpus.
- `speech_aligned/`: CMU flite speech of the same prompt lines in 4 voices ({", ".join(VOICES)}),
  with phone times (`phones`: `[phone, start_s, end_s]`, contiguous from 0 to `duration`).
  Every test-split file (all 4 voices), plus train files up to {SPEECH_ALIGNED_TRAIN_S:g} s taken
  round-robin over the voices.
- `music/moh/`: 10 s clips of the 5 music-on-hold tracks, 16 kHz: the middle clip of each of
  the 2 test tracks, every clip of the 3 train tracks (clips of one track are never split).
- `music/sonic_pi/`: Sonic Pi samples of at least {SONIC_PI_MIN_S:g} s, up to {SONIC_PI_TEST_S:g} s (test) and
  {SONIC_PI_TRAIN_S:g} s (train) of them, **kept at 44.1 kHz** (not resampled): they are the only audio
  above 8 kHz here, which 24 kHz and 44.1 kHz tokenizers need to be judged on. A dataset
  resamples on load (`AudioDataset(..., sample_rate=...)`).

Manifest rows are the source rows unchanged (`path` relative to the manifest, `id`, `text`,
`duration` = samples / `sample_rate`, `split`, `phones`, `voice`, `author`, `licence`, `url`,
`offset`, `source`); audio files are byte-identical copies. Splits follow the source rule
(`audiolatent.data.split_of`: test iff `int(sha1(name)[:8], 16) % 10 == 0`, name = speech id,
sample stem or moh track), so a line is in the same split here, in the full corpus and in both
speech folders.

## How it was built

```bash
python scripts/make_builtin_corpus.py --shared ../shared/data   # from the repository root
```

The script reads the source corpus (built by its `make_data.sh` from Debian bookworm packages:
{", ".join(packages)}; plus flite 2.2 for `speech_aligned`), takes the files listed above
("up to N s": candidates in the order of `sha1("{SELECT_SALT}" + name)`, each taken while the
total stays within N), checks every header against its row, and swaps the new folder in
atomically. The output is deterministic: rebuilding from the same source gives the same bytes.

{licence_section}
The Debian `copyright` files of the source packages are in `licences/`.
"""


def _read_rows(path: Path) -> list[dict]:
    if not path.is_file():
        raise SystemExit(f"{path}: source manifest not found (pass --shared /path/to/shared/data)")
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def _licence_section(readme: Path) -> str:
    text = readme.read_text(encoding="utf-8")
    start = text.find("## Licences and attribution")
    if start < 0:
        raise SystemExit(f"{readme}: no 'Licences and attribution' section to copy")
    end = text.find("\n## ", start + 1)
    return text[start : end if end >= 0 else len(text)].rstrip() + "\n"


def _source_packages(build_info: Path) -> list[str]:
    info = json.loads(build_info.read_text(encoding="utf-8"))
    return [f"`{p['package']}` {p['version']}" for p in info["packages"]]


if __name__ == "__main__":
    sys.exit(main())
