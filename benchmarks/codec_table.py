"""Print the table of configs/codecs/README.md: parameters, frame rates, streams, kbps, causality, latency.

    PYTHONPATH=src python benchmarks/codec_table.py

Models are built on the meta device, so even the 156M-parameter VAE costs no memory.
"""

from __future__ import annotations

from pathlib import Path

import torch

from audiolatent.tokenizers.codec import build_codec

CONFIGS = Path(__file__).resolve().parents[1] / "configs" / "codecs"


def row(path: Path) -> str:
    with torch.device("meta"):
        codec = build_codec(path)
    specs = codec.bottleneck.stream_specs()
    rates = [codec.sample_rate / (codec.encoder_hop * spec.stride) for spec in specs]
    kbps = sum(spec.bits_per_frame * rate for spec, rate in zip(specs, rates)) / 1000
    streams = ", ".join(
        (f"{len(s.codebook_sizes)}x{s.codebook_sizes[0]}" if s.kind == "discrete" else f"{s.dim} dims") + f" @ {r:.4g} Hz"
        for s, r in zip(specs, rates)
    )
    latency_ms = 1000 * (codec.hop_length + codec.lookahead) / codec.sample_rate
    return (
        f"| {codec.name} | {codec.num_parameters() / 1e6:.2f}M | {codec.frame_rate:.4g} | {streams} | {kbps:.3g} | "
        f"{'yes' if codec.causal else 'no'} | {latency_ms:.1f} |"
    )


if __name__ == "__main__":
    print("| config | params | frame rate (Hz) | streams | kbps | causal | latency (ms) |")
    print("|---|---|---|---|---|---|---|")
    for path in sorted(CONFIGS.glob("*.yaml")):
        print(row(path))
