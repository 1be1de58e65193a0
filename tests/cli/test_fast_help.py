"""`audiolatent --help` (and every subcommand's) answers without importing torch (issue 18, item 7)."""

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


@pytest.mark.parametrize("args", [["--help"], ["bench", "--help"], ["train", "--help"], ["lm", "train", "--help"],
                                  ["encode", "--help"], ["data", "prepare", "--help"]])
def test_help_does_not_import_torch(args):
    out = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True, timeout=60).stdout
    assert "usage:" in out and out.strip().endswith("no torch")


def test_the_package_still_exposes_its_api_lazily():
    import audiolatent as al
    from audiolatent.core import Latent

    assert al.Latent is Latent and "load_tokenizer" in dir(al)
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        al.nope  # noqa: B018
