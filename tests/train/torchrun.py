"""Run a script under torchrun for the DDP tests, never leaving workers behind.

``subprocess.run(timeout=...)`` kills only the torchrun launcher; its workers would be orphaned
and could hang forever. Here torchrun starts its own process group, and a timeout kills the
whole group before failing the test.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest


def run_torchrun(args: list[str], env: dict, timeout: float, nproc: int = 2) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(nproc), *args]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        pytest.fail(f"torchrun did not finish in {timeout} s (process group killed)\n{err[-2000:]}")
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)
