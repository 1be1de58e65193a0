"""`audiolatent --help` (and every subcommand's) answers without importing torch and lists the names it accepts
(issue 18, item 7)."""

import os
import re
import subprocess
import sys

import pytest

PROBE = """
import sys
from audiolatent.cli.main import main
try:
    main(sys.argv[1:])
except SystemExit:
    pass
print("torch loaded" if "torch" in sys.modules else "no torch")
"""


def probe(*args: str, columns: int = 1000) -> str:
    """stdout of ``audiolatent ARGS`` in a fresh interpreter ``columns`` wide, ending with whether torch was imported."""
    env = {**os.environ, "COLUMNS": str(columns)}
    return subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True, timeout=60, env=env).stdout


@pytest.mark.parametrize("args", [["--help"], ["bench", "--help"], ["train", "--help"], ["lm", "train", "--help"],
                                  ["encode", "--help"], ["data", "prepare", "--help"]])
def test_help_does_not_import_torch(args):
    out = probe(*args)
    assert "usage:" in out and out.strip().endswith("no torch")


@pytest.mark.parametrize(("args", "names"), [
    (["train", "--help"], ["speech-rvq-16k", "default-16k-finetune", "vae-16k"]),  # configs/train/*.yaml
    (["lm", "train", "--help"], ["token-small", "continuous-small", "mel-16k", "codec-16k-default"]),
    (["info", "--help"], ["mel-16k", "codec-16k-default", "opus-6k", "encodec-24k"]),
    (["encode", "--help"], ["dmel-16k", "waveform-patch-16k", "codec2-3200", "mimi"]),
    (["decode", "--help"], ["mel-24k", "dac-16k"]),
    (["roundtrip", "--help"], ["mel-16k", "xcodec2"]),
    (["export", "--help"], ["codec-16k-default", "torchscript", "--chunk-frames"]),
    (["bench", "--help"], ["--quick", "--full", "codec-16k-default", "opus-6k", "--kind", "--threads", "--no-cache"]),
])
def test_help_lists_the_names_it_accepts(args, names):
    out = probe(*args)
    assert out.strip().endswith("no torch")
    for name in names:
        assert re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", out), f"{' '.join(args)} does not list {name}"


@pytest.mark.parametrize("args", [["encode", "--help"], ["train", "--help"]])
def test_names_are_never_split_at_a_hyphen(args):
    out = probe(*args, columns=40)
    assert "speech-rvq-16k" in out or "codec-16k-default" in out
    assert not [line for line in out.splitlines() if line.endswith("-")]


def test_the_package_still_exposes_its_api_lazily():
    import audiolatent as al
    from audiolatent.core import Latent

    assert al.Latent is Latent and "load_tokenizer" in dir(al)
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        al.nope  # noqa: B018
