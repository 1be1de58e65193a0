"""``audiolatent train``: the parser, one tiny run through the CLI function, and SIGTERM handling
(a training subprocess stopped by SIGTERM writes a loadable checkpoint and exits 0)."""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from audiolatent.cli.train import add_train_parser
from audiolatent.cli.train import main as train_main
from audiolatent.core.registry import load_tokenizer
from tests.train.test_trainer import tiny_config, write_dataset

REPO = Path(__file__).resolve().parents[2]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="audiolatent")
    add_train_parser(parser.add_subparsers(dest="command", required=True))
    return parser


@pytest.fixture
def setup(tmp_path) -> tuple[Path, Path]:
    data = tmp_path / "data"
    data.mkdir()
    write_dataset(data)
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump(tiny_config(steps=4, log_every=2, checkpoint_every=2)))
    return config, data


def test_help_lists_the_options(capsys):
    with pytest.raises(SystemExit) as exit_info:
        _parser().parse_args(["train", "--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for option in ("--data", "--out", "--set", "--resume", "--init-from", "--steps", "torchrun"):
        assert option in text


def test_tiny_run_through_the_cli(setup, tmp_path, capsys):
    config, data = setup
    out = tmp_path / "run"
    assert train_main([str(config), "--data", str(data), "--out", str(out), "--steps", "3",
                       "--set", "optim.lr=0.002", "--no-progress"]) == 0
    run = json.loads((out / "run.json").read_text())
    assert run["config"]["steps"] == 3 and run["config"]["optim"]["lr"] == 0.002
    assert (out / "latest").read_text().strip() == "step_000003"
    load_tokenizer(str(out / "checkpoints" / "step_000003"))
    assert train_main([str(config), "--data", str(data), "--out", str(out), "--steps", "4", "--resume"]) == 0
    assert (out / "latest").read_text().strip() == "step_000004"
    assert "finished at step 4 (resumed from step 3)" in capsys.readouterr().err
    # resuming a run that is already past --steps trains nothing, and says so (issue 15, case 7)
    assert train_main([str(config), "--data", str(data), "--out", str(out), "--steps", "2", "--resume"]) == 0
    err = capsys.readouterr().err
    assert "nothing to train: the run is already at step 4 and steps is 2" in err and "checkpoint None" not in err
    assert "resumed from step 4" in err
    # starting over in a folder that holds a run would overwrite its checkpoints
    assert train_main([str(config), "--data", str(data), "--out", str(out), "--steps", "2"]) == 1
    assert "already holds a training run" in capsys.readouterr().err
    assert (out / "latest").read_text().strip() == "step_000004"
    # user errors: one line, exit 1
    assert train_main([str(config), "--data", str(data), "--out", str(tmp_path / "new"), "--resume"]) == 1
    assert train_main([str(config), "--data", str(data), "--out", str(out), "--set", "optim.nope=1"]) == 1
    err = capsys.readouterr().err
    assert "no checkpoint" in err and "unknown key" in err


def test_sigterm_writes_a_checkpoint_and_exits_cleanly(setup, tmp_path):
    config, data = setup
    out = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "audiolatent.cli.train", str(config), "--data", str(data), "--out", str(out),
           "--steps", "100000", "--set", "checkpoint_every=5", "--set", "log_every=1"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not (out / "latest").exists():
            assert proc.poll() is None, proc.communicate()[1][-2000:]
            assert time.monotonic() < deadline, "no checkpoint within 120 s"
            time.sleep(0.2)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err[-2000:]
    assert "SIGTERM" in err and "stopped at step" in err
    name = (out / "latest").read_text().strip()
    step = int(name.split("_")[1])
    assert 5 <= step < 100000
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert records[-1]["step"] == step
    load_tokenizer(str(out / "checkpoints" / name))


def test_a_time_limit_stops_gracefully_with_a_checkpoint(setup, tmp_path, capsys):
    """--time-limit 0 stops after the first step as SIGTERM would: a loadable, resumable checkpoint."""
    config, data = setup
    out = tmp_path / "run"
    assert train_main([str(config), "--data", str(data), "--out", str(out), "--steps", "1000", "--time-limit", "0",
                       "--no-progress"]) == 0
    err = capsys.readouterr().err
    assert "time limit of 0 min reached" in err and "stopped at step 1;" in err
    assert (out / "latest").read_text().strip() == "step_000001"
    load_tokenizer(str(out / "checkpoints" / "step_000001"))
    with pytest.raises(SystemExit):
        _parser().parse_args(["train", str(config), "--data", str(data), "--out", str(out), "--time-limit", "-1"])


def test_stop_signals_time_limit():
    import logging

    from audiolatent.train.signals import StopSignals

    class Log:
        def __init__(self):
            self.lines = []

        def info(self, message):
            self.lines.append(message)

    log = Log()
    with StopSignals(log, lambda: 0, time_limit_s=3600) as stop:
        assert not stop.requested
        stop.requested = True  # what the DDP all-reduce does
        assert stop.requested
    with StopSignals(log, lambda: 7, time_limit_s=0.0) as stop:
        assert stop.requested and "time limit of 0 min reached" in log.lines[-1]
    with pytest.raises(ValueError, match=">= 0"):
        StopSignals(logging.getLogger(), lambda: 0, time_limit_s=-1.0)
