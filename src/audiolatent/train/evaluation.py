"""Held-out evaluation during training: mel distance, codebook use, example reconstructions.

Runs the unwrapped codec in eval mode under ``no_grad`` on rank 0 only (no collectives), inside
``torch.random.fork_rng`` so evaluating never changes the training RNG stream (resumed runs stay
identical to uninterrupted ones whatever ``eval_every`` is).

Scalars returned:

* ``eval/mel_distance``: mean over files of :func:`audiolatent.bench.distortion.mel_distance`
  (log10-magnitude units; lower is better);
* ``eval/usage/<k>``, ``eval/perplexity/<k>``: per codebook ``k``, the bottleneck's stats
  averaged over batches (usage = fraction of codes used in a batch);
* any other float stat of the bottleneck as ``eval/<name>`` (e.g. ``posterior_std`` of a VAE);
* ``eval/mel_distance_in_band``, only when some held-out file has a ``band_limit_hz`` below
  Nyquist (and ``respect_band_limit``): the same distance after a brick-wall zero-phase low-pass of
  both signals at each file's limit (files without one as they are), so that what the codec puts
  above a telephone recording's 4 kHz is not counted, as the training losses do not count it.

The first ``n_samples`` files are saved as ``<i>_<id>.wav`` (reconstruction) and
``<i>_<id>.ref.wav`` (the input excerpt) under the given folder.
"""

from __future__ import annotations

import re
from pathlib import Path

import torch

from audiolatent.bench.distortion import mel_distance
from audiolatent.core.audio import save_audio
from audiolatent.data import AudioDataset, collate_audio
from audiolatent.data.augment import lowpass

__all__ = ["evaluate"]


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)[:60]


@torch.no_grad()
def evaluate(codec: torch.nn.Module, dataset: AudioDataset, device: torch.device, batch_size: int,
             n_samples: int = 0, samples_dir: Path | None = None, respect_band_limit: bool = True) -> dict[str, float]:
    """Evaluate ``codec`` (a :class:`~audiolatent.tokenizers.codec.NeuralCodec`) on ``dataset``."""
    was_training = codec.training
    codec.eval()
    distances: list[torch.Tensor] = []
    in_band: list[torch.Tensor] = []
    any_limited = False
    sums: dict[str, torch.Tensor] = {}
    batches = 0
    saved = 0
    devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=False, collate_fn=collate_audio)
        for batch in loader:
            x = batch["audio"].to(device)
            out = codec(x)
            y = out["audio"].float()
            x = out.get("target", x)  # a decoder with a declared delay is compared with the delayed input
            distances.append(mel_distance(x.cpu(), y.cpu(), codec.sample_rate))
            cutoff = batch["band_limit_hz"][:, None]  # [B, 1] Hz; at or above Nyquist: no filtering
            if respect_band_limit and bool((cutoff < codec.sample_rate / 2).any()):
                any_limited = True
                in_band.append(mel_distance(lowpass(x.cpu(), codec.sample_rate, cutoff, transition=0.0),
                                            lowpass(y.cpu(), codec.sample_rate, cutoff, transition=0.0), codec.sample_rate))
            else:
                in_band.append(distances[-1])
            for name, value in out["stats"].items():
                value = torch.as_tensor(value, dtype=torch.float32).detach().cpu().reshape(-1)
                sums[name] = sums[name] + value if name in sums and sums[name].shape == value.shape else value
            batches += 1
            for b in range(x.shape[0]):
                if samples_dir is None or saved >= n_samples:
                    break
                stem = f"{saved:02d}_{_safe(batch['entries'][b].id)}"
                save_audio(samples_dir / f"{stem}.wav", y[b].cpu().clamp(-1, 1), codec.sample_rate)
                save_audio(samples_dir / f"{stem}.ref.wav", x[b].cpu(), codec.sample_rate)
                saved += 1
    codec.train(was_training)
    metrics = {"eval/mel_distance": float(torch.cat(distances).mean())} if distances else {}
    if any_limited:
        metrics["eval/mel_distance_in_band"] = float(torch.cat(in_band).mean())
    for name, total in sums.items():
        mean = total / batches
        if mean.numel() == 1:
            metrics[f"eval/{name}"] = float(mean)
        else:
            metrics.update({f"eval/{name}/{k}": float(v) for k, v in enumerate(mean)})
    return metrics
