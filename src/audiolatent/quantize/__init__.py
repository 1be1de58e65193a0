"""Bottlenecks between encoder and decoder, one per file, all implementing
:class:`~audiolatent.quantize.base.Bottleneck` (see ``base.py`` for the contract).

Build one from a config with :func:`build_bottleneck` (``{"kind": "rvq", "dim": 128, ...}``);
the kinds are registered by their modules (:data:`BOTTLENECKS`):

=========  ==========================  ===============================================
kind       class                       idea (paper)
=========  ==========================  ===============================================
vq         VectorQuantizer             EMA codebook, k-means init, dead-code revival
rvq        ResidualVQ                  residual VQ + quantizer dropout (SoundStream, DAC)
split-rvq  SplitRVQ                    semantic VQ beside an acoustic RVQ (Mimi)
grvq       GroupResidualVQ             one RVQ per channel group (HiFi-Codec)
msrvq      MultiScaleRVQ               RVQ layers at strides (4, 2, 1) (SNAC)
fsq        FSQ                         finite scalar quantisation (Mentzer et al. 2023)
lfq        LFQ                         lookup-free binary quantisation (MAGVIT-v2)
scalar     ScalarQuantizer             tanh + uniform rounding per channel (SQ-Codec)
gaussian   GaussianBottleneck          VAE posterior + KL
softnorm   SoftNormBottleneck          EMA-RMS normalisation + training noise
identity   IdentityBottleneck          continuous z (optionally projected)
segment    CausalSegmenter             causal variable-rate segments + durations (H-Net routing)
query-pool QueryPool                   one token per block of frames, learned query (ALMTokenizer)
=========  ==========================  ===============================================
"""

from audiolatent.quantize.base import Bottleneck, BottleneckOutput, StreamSpec, codebook_stats
from audiolatent.quantize.registry import BOTTLENECKS, build_bottleneck, register_bottleneck

# importing the modules registers their classes
from audiolatent.quantize.vq import VectorQuantizer, sync_codebooks  # isort: skip
from audiolatent.quantize.rvq import ResidualVQ  # isort: skip
from audiolatent.quantize.split_rvq import SplitRVQ  # isort: skip
from audiolatent.quantize.grvq import GroupResidualVQ  # isort: skip
from audiolatent.quantize.msrvq import MultiScaleRVQ  # isort: skip
from audiolatent.quantize.fsq import FSQ  # isort: skip
from audiolatent.quantize.lfq import LFQ  # isort: skip
from audiolatent.quantize.scalar import ScalarQuantizer  # isort: skip
from audiolatent.quantize.gaussian import GaussianBottleneck  # isort: skip
from audiolatent.quantize.softnorm import SoftNormBottleneck  # isort: skip
from audiolatent.quantize.identity import IdentityBottleneck  # isort: skip
from audiolatent.quantize.levels import UniformLevels  # isort: skip
from audiolatent.quantize.kmeans import KMeansUnits  # isort: skip
from audiolatent.quantize.segment import CausalSegmenter  # isort: skip
from audiolatent.quantize.query_pool import QueryPool  # isort: skip

__all__ = [
    "BOTTLENECKS",
    "Bottleneck",
    "BottleneckOutput",
    "CausalSegmenter",
    "FSQ",
    "GaussianBottleneck",
    "GroupResidualVQ",
    "IdentityBottleneck",
    "LFQ",
    "MultiScaleRVQ",
    "QueryPool",
    "ResidualVQ",
    "SplitRVQ",
    "ScalarQuantizer",
    "SoftNormBottleneck",
    "StreamSpec",
    "VectorQuantizer",
    "build_bottleneck",
    "codebook_stats",
    "register_bottleneck",
    "sync_codebooks",
]
