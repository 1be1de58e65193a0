"""Second-stage models over latents: token LMs with codebook patterns, MaskGIT/SoundStorm
parallel decoding, continuous AR with distribution heads, infill flow matching, and the
modelability probes the bench calls (``lm.probe``)."""

from audiolatent.lm.continuous import ContinuousLM
from audiolatent.lm.flow_matching import InfillFlowMatching
from audiolatent.lm.heads import HEADS, FlowHead, GaussianHead, GMMHead, get_head
from audiolatent.lm.maskgit import MaskGIT
from audiolatent.lm.patterns import PATTERNS, Pattern, get_pattern
from audiolatent.lm.probe import (
    ProbeResult,
    evaluate_continuous_probe,
    evaluate_token_probe,
    train_continuous_probe,
    train_token_probe,
)
from audiolatent.lm.token_lm import TokenLM

__all__ = [
    "ContinuousLM", "InfillFlowMatching", "HEADS", "FlowHead", "GaussianHead", "GMMHead", "get_head", "MaskGIT",
    "PATTERNS", "Pattern", "get_pattern", "ProbeResult", "evaluate_continuous_probe", "evaluate_token_probe",
    "train_continuous_probe", "train_token_probe", "TokenLM",
]
