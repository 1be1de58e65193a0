"""Shared settings of the tests of audiolatent.nn."""

import pytest
import torch


@pytest.fixture(autouse=True, scope="package")
def one_intra_op_thread():
    """Run these tiny-tensor tests on one intra-op thread (restored afterwards).

    With a second thread, every small matmul of the LSTM and attention paths pays an OpenMP
    synchronisation; on a 2-core machine where another process holds a core, that turns a 1 ms
    LSTM call into over a second.
    """
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
