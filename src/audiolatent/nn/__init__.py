"""Streaming neural-network building blocks: convs with state, SEANet, Snake, transformer, LSTM.

Every temporal module here exposes integer ``stride`` and ``lookahead`` attributes (see
:mod:`audiolatent.nn.latency` for their units and exact definition) and, when causal, streams
exactly inside ``with module.streaming(batch_size):`` (:mod:`audiolatent.core.streaming`).
Non-causal modules raise :class:`audiolatent.core.errors.StreamingError` when asked to stream.
"""

from audiolatent.nn.activations import ACTIVATIONS, Snake, get_activation, register_activation
from audiolatent.nn.conv import StreamingConv1d, StreamingConvTranspose1d, relayout_for_time_major, remove_weight_norm
from audiolatent.nn.latency import downsampling_lookahead, measure_lookahead, upsampling_lookahead
from audiolatent.nn.lstm import StreamingLSTM
from audiolatent.nn.resample import ConvDownsample1d, ConvTrUpsample1d
from audiolatent.nn.seanet import (
    SEQUENCE_MODELS,
    DecoderBlock,
    EncoderBlock,
    LayerOptions,
    ResidualUnit,
    SEANetDecoder,
    SEANetEncoder,
    build_sequence_model,
)
from audiolatent.nn.transformer import StreamingMultiheadAttention, StreamingTransformer, TransformerLayer

__all__ = [
    "ACTIVATIONS", "Snake", "get_activation", "register_activation",
    "StreamingConv1d", "StreamingConvTranspose1d", "relayout_for_time_major", "remove_weight_norm",
    "downsampling_lookahead", "measure_lookahead", "upsampling_lookahead",
    "StreamingLSTM",
    "ConvDownsample1d", "ConvTrUpsample1d",
    "SEQUENCE_MODELS", "DecoderBlock", "EncoderBlock", "LayerOptions", "ResidualUnit", "SEANetDecoder",
    "SEANetEncoder", "build_sequence_model",
    "StreamingMultiheadAttention", "StreamingTransformer", "TransformerLayer",
]
