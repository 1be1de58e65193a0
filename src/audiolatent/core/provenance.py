"""What made a result: package versions, machine and command, attached to every report and checkpoint."""

from __future__ import annotations

import datetime as _dt
import platform
import sys


def environment() -> dict:
    """Versions and machine facts that a reported number depends on."""
    import numpy
    import soundfile
    import soxr
    import torch

    from audiolatent import __version__

    return {
        "audiolatent": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "soundfile": soundfile.__version__,
        "libsndfile": soundfile.__libsndfile_version__,
        "soxr": soxr.__version__,
        "platform": platform.platform(),
        "machine": platform.machine(),
        "torch_threads": torch.get_num_threads(),
        "cuda": torch.version.cuda if torch.cuda.is_available() else None,
        "command": " ".join(sys.argv),
        "date_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }


def tokenizer_fingerprint(tokenizer) -> str:
    """16 hex digits of sha256 over the tokenizer's kind, config and every weight/buffer tensor."""
    import hashlib  # imported here: this module stays light for the torch-free commands

    import torch

    from audiolatent.core.config import config_hash, to_dict

    digest = hashlib.sha256(config_hash({"kind": tokenizer.kind, "config": to_dict(tokenizer.config)}).encode())
    for name, tensor in sorted(tokenizer.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()[:16]

