import torch
from torch import nn

from audiolatent.core.cache import TableCache


def test_memoises_at_inference_and_recomputes_after_in_place_change():
    owner = nn.Linear(2, 2).eval()
    cache, calls = TableCache(), []

    def compute():
        calls.append(1)
        return owner.weight.sum()

    with torch.no_grad():
        first = cache.get(owner, "t", list(owner.parameters()), compute)
        assert cache.get(owner, "t", list(owner.parameters()), compute) is first and len(calls) == 1
        owner.weight.add_(1.0)  # bumps the version counter
        assert cache.get(owner, "t", list(owner.parameters()), compute) is not first and len(calls) == 2
    cache.get(owner, "t", list(owner.parameters()), compute)  # grad enabled: never memoised
    owner.train()
    with torch.no_grad():
        cache.get(owner, "t", list(owner.parameters()), compute)  # training mode: never memoised
    assert len(calls) == 4


def test_copies_and_pickles_start_empty():
    import copy
    import pickle

    owner = nn.Linear(2, 2).eval()
    cache = TableCache()
    with torch.no_grad():
        cache.get(owner, "t", list(owner.parameters()), lambda: owner.weight.sum())
    assert copy.deepcopy(cache)._entries == {} and pickle.loads(pickle.dumps(cache))._entries == {}
    assert cache._entries  # the original keeps its entries
