"""Minimal PyTorch reference of BYOL-S (AudioNTT2020 + its front end), for numerics checks.

Runs in a throwaway environment with PyTorch (CPU), never in the project's own (not run
by CI; the project never imports torch):

    python3 -m venv /tmp/torchenv && /tmp/torchenv/bin/pip install torch numpy
    /tmp/torchenv/bin/python benchmarks/byols_torch_reference.py SIGNALS.npz CHECKPOINT.pth OUT.npz

``SIGNALS.npz`` holds 16 kHz mono float32 clips ``clip_000``, ... and the scalars
``norm_mean`` / ``norm_std`` (written by ``benchmarks/byols_numerics.py``, which drives this
script). Written independently of ``ser.features.byols``: the front end is ``torch.stft``
(periodic Hann window of 400 in n_fft 1024, hop 160, centred, reflect padding), power 2,
an HTK mel matrix built here the way torchaudio's ``melscale_fbanks`` does (64 bands,
60-7,800 Hz, no normalisation), ``log(x + float32 eps)``; the encoder is the original's
module layout (``features`` Sequential of Conv/BN/ReLU/MaxPool, ``fc`` Sequential) loaded
with ``torch.load(weights_only=True)`` and ``load_state_dict(strict=True)``; the embedding
is max + mean over time of the last layer, as in BYOL-A's AudioNTT2020.forward.
OUT.npz gets ``emb_000``, ... (512 float32 each) and ``logmel_000``, ... (frames x 64).
"""

from __future__ import annotations

import math
import sys

import numpy as np
import torch
from torch import nn


def htk_mel_matrix(n_freqs: int = 513, f_min: float = 60.0, f_max: float = 7800.0,
                   n_mels: int = 64, sample_rate: int = 16000) -> torch.Tensor:
    """``(n_freqs, n_mels)`` triangular HTK filters, unnormalised (torchaudio's recipe)."""
    all_freqs = torch.linspace(0, sample_rate // 2, n_freqs)
    m_min = 2595.0 * math.log10(1.0 + f_min / 700.0)
    m_max = 2595.0 * math.log10(1.0 + f_max / 700.0)
    m_pts = torch.linspace(m_min, m_max, n_mels + 2)
    f_pts = 700.0 * (10 ** (m_pts / 2595.0) - 1.0)
    f_diff = f_pts[1:] - f_pts[:-1]
    slopes = f_pts.unsqueeze(0) - all_freqs.unsqueeze(1)
    down = -slopes[:, :-2] / f_diff[:-1]
    up = slopes[:, 2:] / f_diff[1:]
    return torch.clamp(torch.min(down, up), min=0.0)


def front_end(y: torch.Tensor, fb: torch.Tensor) -> torch.Tensor:
    """``(64, frames)`` log-mel of a 1-D float32 clip."""
    spec = torch.stft(y, n_fft=1024, hop_length=160, win_length=400,
                      window=torch.hann_window(400), center=True, pad_mode="reflect",
                      normalized=False, onesided=True, return_complex=True)
    power = spec.abs() ** 2.0
    mel = torch.matmul(power.transpose(-1, -2), fb).transpose(-1, -2)
    return torch.log(mel + torch.finfo(torch.float32).eps)


class AudioNTT2020(nn.Module):
    """BYOL-A's encoder, d = 512, 64 mel bands."""

    def __init__(self, n_mels: int = 64, d: int = 512) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 64, 3, stride=1, padding=1), nn.BatchNorm2d(64), nn.ReLU(),
            nn.MaxPool2d(2, stride=2),
            nn.Conv2d(64, 64, 3, stride=1, padding=1), nn.BatchNorm2d(64), nn.ReLU(),
            nn.MaxPool2d(2, stride=2),
            nn.Conv2d(64, 64, 3, stride=1, padding=1), nn.BatchNorm2d(64), nn.ReLU(),
            nn.MaxPool2d(2, stride=2),
        )
        self.fc = nn.Sequential(nn.Linear(64 * (n_mels // 8), d), nn.ReLU(), nn.Dropout(p=0.3),
                                nn.Linear(d, d), nn.ReLU())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)            # (B, C, mel, T)
        x = x.permute(0, 3, 2, 1)       # (B, T, mel, C)
        b, t, d, c = x.shape
        x = x.reshape((b, t, c * d))
        x = self.fc(x)
        x1, _ = torch.max(x, dim=1)
        x2 = torch.mean(x, dim=1)
        return x1 + x2


def main(argv: list[str]) -> int:
    signals_path, checkpoint, out_path = argv
    torch.set_num_threads(1)
    model = AudioNTT2020()
    model.load_state_dict(torch.load(checkpoint, map_location="cpu", weights_only=True),
                          strict=True)
    model.eval()
    fb = htk_mel_matrix()
    out: dict[str, np.ndarray] = {}
    with np.load(signals_path, allow_pickle=False) as sig:
        mean, std = float(sig["norm_mean"]), float(sig["norm_std"])
        names = sorted(k for k in sig.files if k.startswith("clip_"))
        with torch.no_grad():
            for name in names:
                y = torch.from_numpy(np.asarray(sig[name], np.float32))
                lm = front_end(y, fb)
                x = ((lm - mean) / std)[None, None]
                key = name.removeprefix("clip_")
                out[f"emb_{key}"] = model(x)[0].numpy()
                out[f"logmel_{key}"] = lm.T.numpy()
    np.savez(out_path, **out)
    print(f"{len(names)} clips -> {out_path} (torch {torch.__version__})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
