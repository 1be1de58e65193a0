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
