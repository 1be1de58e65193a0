"""Two gloo processes: ``sync_distributed`` leaves every rank with the same codebooks."""

import os
import time

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from audiolatent.quantize import GroupResidualVQ, ResidualVQ, SoftNormBottleneck

STEPS = 4


def _batch(rank: int, step: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(1000 * rank + step)
    return torch.randn(2, 8, 16, generator=gen) * (1 + rank)  # different data on each rank


def _models():
    torch.manual_seed(0)  # identical initial weights on every rank
    return {
        # k-means init + dead codes + per-batch quantizer dropout: re-initialised codes come from rank 0
        "rvq": ResidualVQ(8, n_codebooks=3, codebook_size=16, codebook_dim=4, quantizer_dropout=0.5, dead_code_threshold=4.0),
        # plain EMA: the synced update must equal one process seeing both ranks' batches
        "ema": ResidualVQ(8, n_codebooks=2, codebook_size=16, kmeans_init=False, dead_code_threshold=0.0),
        "grvq": GroupResidualVQ(8, n_groups=2, n_codebooks=2, codebook_size=8, l2_normalize=True),
        "softnorm": SoftNormBottleneck(8),
    }


def _worker(rank: int, world: int, init_file: str, out_dir: str) -> None:
    torch.set_num_threads(1)  # forked from a process whose thread pool may be running
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        torch.manual_seed(100 + rank)  # dropout and sampling differ between ranks
        models = _models()
        for model in models.values():
            model.train()
            for step in range(STEPS):
                model(_batch(rank, step))
                model.sync_distributed()
        state = {name: {k: v.clone() for k, v in m.state_dict().items()} for name, m in models.items()}
        torch.save(state, os.path.join(out_dir, f"rank{rank}.pt"))
    finally:
        dist.destroy_process_group()


def test_two_ranks_end_with_identical_codebooks(tmp_path):
    # fork: the children reuse the parent's imported torch (a spawned child re-imports it, seconds)
    context = mp.start_processes(
        _worker, args=(2, str(tmp_path / "pg"), str(tmp_path)), nprocs=2, join=False, start_method="fork"
    )
    deadline = time.monotonic() + 60
    while not context.join(timeout=1):
        if time.monotonic() > deadline:  # a hang (e.g. mismatched collectives) fails instead of blocking
            for process in context.processes:
                process.kill()
            raise AssertionError("the two ranks did not finish within 60 s")
    rank0, rank1 = (torch.load(tmp_path / f"rank{r}.pt") for r in (0, 1))
    for name in rank0:
        for key, value in rank0[name].items():
            assert torch.equal(value, rank1[name][key]), f"{name}.{key} differs between ranks"
    # the deferred updates did run: codebooks moved away from their initial values
    initial = _models()
    assert not torch.equal(rank0["rvq"]["layers.0.embed"], initial["rvq"].state_dict()["layers.0.embed"])
    assert rank0["rvq"]["layers.0.initialized"].item()

    # pooled statistics == one process that saw both ranks' batches in each step
    reference = ResidualVQ(8, n_codebooks=2, codebook_size=16, kmeans_init=False, dead_code_threshold=0.0, deferred_update=True)
    reference.load_state_dict(initial["ema"].state_dict())
    reference.train()
    for step in range(STEPS):
        reference(_batch(0, step))
        reference(_batch(1, step))
        reference.sync_distributed()
    for key, value in reference.state_dict().items():
        assert torch.allclose(value.float(), rank0["ema"][key].float(), atol=1e-5), key
