"""Two CPU processes under torchrun (gloo): the replicas stay identical — weights, EMA codebooks,
discriminators — through GAN steps, quantizer dropout and k-means init, on a 3-file dataset that
does not split evenly over 2 ranks (the sampler pads; no rank waits forever)."""

from __future__ import annotations

import json
import os
import textwrap
from pathlib import Path

import pytest
import torch

from tests.train.test_trainer import TINY_MODEL, tiny_config, write_dataset
from tests.train.torchrun import run_torchrun

REPO = Path(__file__).resolve().parents[2]

SCRIPT = textwrap.dedent('''
    import json, os, sys
    import torch
    torch.set_num_threads(1)
    from audiolatent.train.config import load_train_config
    from audiolatent.train.trainer import Trainer

    config, data, out = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3]
    trainer = Trainer(load_train_config(config), [data], out, progress=False)
    result = trainer.fit()
    rank = trainer.ctx.rank
    torch.save({"codec": trainer.codec.state_dict(), "disc": trainer.discriminators.state_dict(),
                "step": result["step"], "world": trainer.ctx.world_size, "batches": trainer.loader.batches_per_epoch},
               os.path.join(out, f"rank{rank}.pt"))
    trainer.close()
''')


@pytest.mark.slow
def test_two_process_gloo_replicas_stay_identical(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    write_dataset(data)
    model = {**TINY_MODEL, "bottleneck": {**TINY_MODEL["bottleneck"], "quantizer_dropout": 0.5}}
    config = tiny_config(model=model, steps=6, checkpoint_every=3, adversarial_start_step=2,
                         losses={"balancer": True, "mel_options": {"window_lengths": [64, 256], "n_mels": [16, 32]}})
    script = tmp_path / "ddp_train.py"
    script.write_text(SCRIPT)
    out = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": str(REPO / "src") + os.pathsep + os.environ.get("PYTHONPATH", ""),
           "OMP_NUM_THREADS": "1"}
    proc = run_torchrun([str(script), json.dumps(config), str(data), str(out)], env, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    ranks = [torch.load(out / f"rank{r}.pt", weights_only=True) for r in (0, 1)]
    assert ranks[0]["world"] == ranks[1]["world"] == 2 and ranks[0]["step"] == ranks[1]["step"] == 6
    assert ranks[0]["batches"] == ranks[1]["batches"] == 1
    for part in ("codec", "disc"):
        a, b = ranks[0][part], ranks[1][part]
        assert a.keys() == b.keys()
        for key in a:
            assert torch.equal(a[key], b[key]), f"{part}.{key} differs between ranks"
    embeds = [k for k in ranks[0]["codec"] if k.endswith("embed")]
    assert embeds and all(bool(ranks[0]["codec"][k.replace("embed", "initialized")]) for k in embeds)
    assert (out / "latest").read_text().strip() == "step_000006"
