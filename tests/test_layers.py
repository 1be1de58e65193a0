"""DESIGN.md's layering: a package imports only from packages below it."""

import re
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "audiolatent"
#: bottom to top
LAYERS = ["core", "data", "nn", "quantize", "tokenizers", "lm", "train", "bench", "cli"]
#: the trainer's held-out evaluation reports the bench's mel distance, so both use one definition
ALLOWED = {("train/evaluation.py", "bench")}


def test_imports_point_down():
    rank = {name: i for i, name in enumerate(LAYERS)}
    upward = []
    for path in PACKAGE.rglob("*.py"):
        rel = path.relative_to(PACKAGE)
        if len(rel.parts) < 2 or rel.parts[0] not in rank:
            continue
        for dep in re.findall(r"^\s*(?:from|import) audiolatent\.(\w+)", path.read_text(), flags=re.M):
            if dep in rank and rank[dep] > rank[rel.parts[0]] and (rel.as_posix(), dep) not in ALLOWED:
                upward.append(f"{rel} imports audiolatent.{dep}")
    assert not upward, "\n".join(upward)
