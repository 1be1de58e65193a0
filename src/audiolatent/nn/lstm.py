"""A residual LSTM over frames that carries its ``(h, c)`` state between streaming calls.

As at the bottleneck of the EnCodec SEANet (Défossez et al., 2022, "High Fidelity Neural Audio
Compression"): ``y = LSTM(x) + x`` (the skip is optional), channels first.

An LSTM is causal by construction; offline it starts from zero state, and in streaming each call
continues from the state the previous call ended in, so chunked outputs equal the offline one.
The recurrence over time runs inside ``nn.LSTM`` (C++), not in Python.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from audiolatent.core.streaming import StreamingModule

__all__ = ["StreamingLSTM"]


@dataclass
class _LSTMState:
    hidden: torch.Tensor  # [num_layers, B, dim]
    cell: torch.Tensor  # [num_layers, B, dim]


class StreamingLSTM(StreamingModule):
    """Residual LSTM on ``[B, dim, T]`` frames -> ``[B, dim, T]``.

    Args:
        dim: channels D (input and hidden size).
        num_layers: stacked LSTM layers (EnCodec uses 2).
        skip: add the input to the output.

    Attributes: ``stride = 1``, ``lookahead = 0`` (frames).
    """

    stride = 1
    lookahead = 0

    def __init__(self, dim: int, num_layers: int = 2, skip: bool = True) -> None:
        super().__init__()
        self.dim, self.num_layers, self.skip = dim, num_layers, skip
        self.lstm = nn.LSTM(dim, dim, num_layers)

    def _init_streaming_state(self, batch_size: int) -> _LSTMState:
        p = self.lstm.weight_ih_l0
        zeros = torch.zeros(self.num_layers, batch_size, self.dim, device=p.device, dtype=p.dtype)
        return _LSTMState(zeros, zeros.clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x [B, dim, T]`` -> ``[B, dim, T]``; in streaming, any chunk length (frames)."""
        self._check_streaming_batch(x)
        if x.shape[-1] == 0:
            return x
        seq = x.permute(2, 0, 1)  # [T, B, dim]
        state: _LSTMState | None = self._streaming_state
        if state is None:
            y, _ = self.lstm(seq)
        else:
            y, (state.hidden, state.cell) = self.lstm(seq, (state.hidden, state.cell))
        y = y.permute(1, 2, 0)
        return y + x if self.skip else y
