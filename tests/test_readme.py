"""The README cannot drift: its Python examples run here, and CI runs its test command."""

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"
CI = Path(__file__).resolve().parents[1] / ".ci" / "run"


def _blocks(lang):
    return re.findall(rf"```{lang}\n(.*?)```", README.read_text(), flags=re.S)


def test_python_examples_run(tmp_path, monkeypatch):
    blocks = _blocks("python")
    assert blocks, "README has no python examples"
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    for i, code in enumerate(blocks):
        exec(compile(code, f"README.md python block {i}", "exec"), namespace)


def test_ci_runs_the_readme_test_command():
    text = README.read_text()
    match = re.search(r"Run the tests.*?```bash\n(.*?)\n```", text, flags=re.S)
    assert match, "README must state the test command under 'Run the tests'"
    command = match.group(1).strip()
    assert command in CI.read_text(), ".ci/run must call the README's test command verbatim (with -q pip flags)"
