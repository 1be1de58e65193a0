"""Warm-start a sub-frame Vocos head from a trained single-frame one (the codec-16k-default v2 step).

    PYTHONPATH=src python scripts/subframe_head_init.py SOURCE_CKPT CODEC_YAML OUT_CKPT

Builds the codec of CODEC_YAML (a ``vocos`` decoder with ``subframes: S``), copies every tensor of
SOURCE_CKPT whose name and shape fit, and initialises the new head from the old one instead of
from scratch. The old head predicts, per latent frame, a spectrum of ``n_fft`` bins; sub-frame ``s``
of the new head (FFT size ``n_fft / S``, hop ``hop / S``) starts from the old rows of every
``S``-th bin (the spectrum of the old frame folded to the shorter frame) and, for its phase, a
linear-phase advance of ``s * hop / S`` samples. This is only a starting point: the fine-tune
(``audiolatent train ... --init-from OUT_CKPT``) learns the real head. From scratch, the head
needs thousands of steps to reach the loss the old head starts at.
"""

from __future__ import annotations

import math
import sys

import torch

from audiolatent.core.checkpoint import save_checkpoint
from audiolatent.core.registry import load_tokenizer
from audiolatent.tokenizers.codec import build_codec


def main() -> None:
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    source, codec_yaml, out = sys.argv[1:]
    old = load_tokenizer(source)
    new = build_codec(codec_yaml)
    old_head, head = old.decoder.head, new.decoder.head
    s = head.subframes
    if old_head.subframes != 1 or old_head.n_fft != s * head.n_fft or old_head.hop_length != s * head.hop_length:
        sys.exit(f"need a single-frame head with n_fft = {s} x {head.n_fft} and hop = {s} x {head.hop_length}")
    state = {k: v for k, v in old.state_dict().items() if not k.startswith("decoder.head.")}
    missing = new.load_state_dict(state, strict=False).missing_keys
    assert sorted(missing) == ["decoder.head.proj.bias", "decoder.head.proj.weight"], missing
    c, n_old, n_new = head.channels, old_head.n_bins, head.n_bins
    w_old = old_head.proj.weight.detach().view(c, 2, n_old, -1)
    b_old = old_head.proj.bias.detach().view(c, 2, n_old)
    bins = torch.arange(n_new) * s  # old bin of the same frequency
    weight = torch.zeros(c, 2, n_new, s, w_old.shape[-1])
    bias = torch.zeros(c, 2, n_new, s)
    for k in range(s):
        weight[:, :, :, k] = w_old[:, :, bins]
        bias[:, :, :, k] = b_old[:, :, bins]
        bias[:, 1, :, k] += 2 * math.pi * torch.arange(n_new) * (k * head.hop_length) / head.n_fft
    with torch.no_grad():
        head.proj.weight.copy_(weight.reshape(head.proj.weight.shape))
        head.proj.bias.copy_(bias.reshape(-1))
    save_checkpoint(new, out, extra={"initialised_from": {"source": str(source), "by": "scripts/subframe_head_init.py"}})
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
