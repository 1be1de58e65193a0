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


def test_a_graph_being_recorded_is_never_served_from_or_written_to_the_memo():
    owner = nn.Linear(2, 2).eval()
    cache, calls = TableCache(), []

    def compute():
        calls.append(1)
        return owner.weight * 2

    class Derived(nn.Module):
        def __init__(self):
            super().__init__()
            self.owner = owner  # its weight is a parameter of the graph

        def forward(self, x):
            return x @ cache.get(owner, "t", list(owner.parameters()), compute)

    with torch.no_grad():
        cache.get(owner, "t", list(owner.parameters()), compute)  # an eager entry the traces must not reuse
        traced = torch.jit.trace(Derived(), torch.ones(1, 2), check_trace=False)
        exported = torch.export.export(Derived(), (torch.ones(1, 2),)).module()
        assert len(calls) == 3  # computed inside both graphs
        assert cache.get(owner, "t", list(owner.parameters()), compute) is cache._entries["t"][1] and len(calls) == 3
        owner.weight.copy_(torch.eye(2))  # the graphs read the weight, not a copy baked in at trace time
        assert torch.equal(traced(torch.ones(1, 2)), torch.full((1, 2), 2.0))
    assert not any(type(v).__name__ == "FakeTensor" for _, v in cache._entries.values())
