"""BYOL-S: a pretrained speech encoder (AudioNTT2020, 512-d) as the ``byols`` feature set.

BYOL-S (SERAB, Scheidwasser-Clow et al., ICASSP 2022) is a 3-block CNN pretrained
self-supervised on the speech part of AudioSet; its weights (MIT licence, notice in
``ser/features/weights/BYOLS_LICENSE.txt``) ship with the package as
``ser/features/weights/byols.npz`` (converted from the original ``.pth`` by
``python -m ser.features.byols convert``; no pickle is involved in reading either).

Per clip:

1. Decoding exactly as the other sets (:func:`ser.audio.load_audio`, then
   :func:`ser.features.mfcc.prepare_signal`'s trim / ``max_seconds`` steps of the
   ``mfcc:`` section) but always at 16 kHz, the encoder's rate. At most
   ``max_seconds + READ_MARGIN_SECONDS`` are decoded (all with ``max_seconds: null``).
2. The original front end (torchaudio ``MelSpectrogram`` defaults otherwise): periodic
   Hann window of 400 samples centred in ``n_fft`` 1024, hop 160, centred frames with
   reflect padding, power 2, 64 HTK mel bands 60-7,800 Hz without filter normalisation
   (``librosa.filters.mel(htk=True, norm=None)``), then ``log(x + float32 eps)``
   (:func:`byols_logmel`).
3. Input standardisation ``(x - norm_mean) / norm_std`` with two scalars from the
   ``byols:`` section (see *Standardisation* below).
4. The encoder (:func:`build_encoder`, Keras 3): three blocks Conv2D(3x3, 64) ->
   BatchNorm -> ReLU -> MaxPool(2) on (time, mel), frames of 8 mel x 64 channels
   (mel-major) -> Dense(512) ReLU -> Dropout -> Dense(512) ReLU, then mean + max over
   time: 512 values, written as ``feat_byols_000`` ... ``feat_byols_511``.

Clips are encoded in length buckets (clips padded to the same multiple of
:data:`BUCKET_FRAMES` frames batched together, always ``batch_size`` rows); padding is
masked after every block (zeros, exactly what the per-clip convolution sees past the
clip's end) and the pooling runs over each clip's own frames only, so a clip's embedding
is the same bytes whatever clips share its batch (tested; so shards merge to exactly
one job's output). Clips longer than :data:`CHUNK_FRAMES` frames go through the
encoder in overlapping windows (:data:`CONTEXT_FRAMES` of context each side, beyond
the encoder's receptive field), so the encoder's memory is flat in the clip's length.

Standardisation
    The original standardises the log-mel input with a dataset mean and std (two
    scalars). Embeddings are extracted once per corpus, before any split exists, so the
    statistics are part of the feature definition: ``byols.norm_mean`` / ``norm_std``
    in ``params.yaml``, recorded in the features' fingerprint and therefore in every
    model card, and prediction reuses exactly the card's values. Compute them from your
    training recordings with ``python -m ser.features.byols stats <dir or files>``.
    The defaults were computed that way from the 12 RAVDESS actors of
    ``../shared/data/ravdess`` (unlabeled audio, no labels used); the real-data
    benchmark does not use them but recomputes them on each fold's training speakers
    only (benchmarks/real_data_bench.py).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from ser.errors import ConfigError, SerError
from ser.features.mfcc import FeatureError, FeatureParams, single_threaded_blas
from ser.features.torch_checkpoint import CheckpointError, read_state_dict

#: Bump when the embedding values the same parameters produce change.
BYOLS_VERSION = 1

SAMPLE_RATE = 16000
N_FFT = 1024
WIN_LENGTH = 400
HOP_LENGTH = 160
N_MELS = 64
F_MIN = 60.0
F_MAX = 7800.0
LOG_EPS = float(np.finfo(np.float32).eps)
EMBEDDING_DIM = 512
#: Time downsampling of the encoder (three 2x2 max-pools).
TIME_STRIDE = 8
#: Bucketed clips are padded to a multiple of this many frames (few compiled shapes).
BUCKET_FRAMES = 64
#: Longer clips are encoded in windows of this many frames (20.48 s) ...
CHUNK_FRAMES = 2048
#: ... with this much context on each side (the receptive field is 22 frames).
CONTEXT_FRAMES = 64
#: Front-end blocks of frames (bounds the STFT's temporaries on long clips).
_STFT_BLOCK = 4096

#: The original checkpoint (README of ../shared/models/byols).
ORIGINAL_FILE = "default512_BYOLAs64x96-2107281850-e100-bs256-lr0003-rs42.pth"
ORIGINAL_SHA256 = "449f5d0dc6b6fa8433d5e43769097520d3bc0fdae88977a7ac29e2e72ca51b52"
ORIGINAL_SOURCE = ("https://github.com/Neclow/SERAB, file SERAB/checkpoints/"
                   f"{ORIGINAL_FILE}")
ORIGINAL_COMMIT = "8023cb75dc6f32a6f211bfbc83efe9491c41d8b7"
#: The shipped converted weights and the sha256 of that file (checked when loaded).
SHIPPED_WEIGHTS = "byols.npz"
SHIPPED_SHA256 = "5c076cdd2a801617c1256549d89e64cd09b441142a61d26d964e4b24d2281927"

#: Array name -> shape of an AudioNTT2020 (d = 512) state dict (``num_batches_tracked``
#: is dropped: it does not affect the outputs).
EXPECTED_SHAPES: dict[str, tuple[int, ...]] = {
    **{f"features.{i}.weight": (64, c, 3, 3) for i, c in ((0, 1), (4, 64), (8, 64))},
    **{f"features.{i}.bias": (64,) for i in (0, 4, 8)},
    **{f"features.{i}.{k}": (64,) for i in (1, 5, 9)
       for k in ("weight", "bias", "running_mean", "running_var")},
    "fc.0.weight": (512, 512), "fc.0.bias": (512,),
    "fc.3.weight": (512, 512), "fc.3.bias": (512,),
}
BN_EPS = 1e-5

#: Defaults of ``byols.norm_mean`` / ``norm_std`` (see the module docstring).
DEFAULT_NORM_MEAN = -6.172118
DEFAULT_NORM_STD = 4.193499

FEATURE_NAMES: list[str] = [f"feat_byols_{i:03d}" for i in range(EMBEDDING_DIM)]


# --------------------------------------------------------------------------- weights

def weights_dir() -> Path:
    """Folder of the shipped weights and their licence notice."""
    return Path(str(resources.files("ser") / "features" / "weights"))


def arrays_sha256(arrays: Mapping[str, np.ndarray]) -> str:
    """Content checksum of named arrays (names, dtypes, shapes and bytes, sorted by name)."""
    h = hashlib.sha256()
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        h.update(f"{name}\0{a.dtype.str}\0{a.shape}\0".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def check_architecture(arrays: Mapping[str, np.ndarray], source: str) -> dict[str, np.ndarray]:
    """The AudioNTT2020 arrays of ``arrays`` as float32, or one line naming what differs."""
    missing = [k for k in EXPECTED_SHAPES if k not in arrays]
    if missing:
        raise CheckpointError(f"{source}: not a BYOL-S (AudioNTT2020, d=512) checkpoint: "
                              f"missing {', '.join(missing[:3])}"
                              + (f" and {len(missing) - 3} more" if len(missing) > 3 else ""))
    for key, shape in EXPECTED_SHAPES.items():
        if tuple(arrays[key].shape) != shape:
            raise CheckpointError(f"{source}: not a BYOL-S (AudioNTT2020, d=512) checkpoint: "
                                  f"{key} has shape {tuple(arrays[key].shape)}, expected "
                                  f"{shape}")
    out = {k: np.asarray(arrays[k], np.float32) for k in EXPECTED_SHAPES}
    if not all(np.all(np.isfinite(v)) for v in out.values()):
        raise CheckpointError(f"{source}: the checkpoint holds NaN or infinite weights")
    return out


def convert_checkpoint(src: str | Path, out: str | Path, *,
                       expected_sha256: str | None = ORIGINAL_SHA256,
                       source: str = ORIGINAL_SOURCE,
                       source_commit: str = ORIGINAL_COMMIT) -> dict[str, Any]:
    """Convert a ``torch.save`` AudioNTT2020 state dict into a pickle-free ``.npz``.

    The ``.pth`` is read by :func:`ser.features.torch_checkpoint.read_state_dict` (only
    tensor storages are accepted) after its sha256 is checked against
    ``expected_sha256`` (``None``: not checked). The ``.npz`` holds one float32 array per
    weight plus ``meta``, a JSON string with the provenance and ``arrays_sha256`` (the
    content checksum :func:`load_weights` verifies). Returns ``meta``.
    """
    from ser.outputs import atomic_path, sha256_file

    src = Path(src)
    if not src.is_file():
        raise CheckpointError(f"{src}: no such checkpoint file")
    digest = sha256_file(src)
    if expected_sha256 is not None and digest != expected_sha256:
        raise CheckpointError(f"{src}: sha256 {digest} differs from the expected "
                              f"{expected_sha256}; not the original BYOL-S checkpoint "
                              "(pass --sha256 none to convert another checkpoint)")
    arrays = check_architecture(read_state_dict(src), str(src))
    meta = {"architecture": "AudioNTT2020 (BYOL-A/BYOL-S), d=512, 64 mel bands",
            "source": source, "source_commit": source_commit,
            "source_sha256": digest, "licence": "MIT (see BYOLS_LICENSE.txt)",
            "arrays_sha256": arrays_sha256(arrays), "format_version": 1}
    with atomic_path(out) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, meta=np.array(json.dumps(meta, sort_keys=True)), **arrays)
    return meta


@functools.lru_cache(maxsize=4)
def _load_weights_cached(path: str, mtime_ns: int) -> tuple[dict[str, np.ndarray], str]:
    p = Path(path)
    shipped = p.resolve() == (weights_dir() / SHIPPED_WEIGHTS).resolve()
    if p.suffix == ".pth" or (p.is_file() and p.read_bytes()[:4] == b"PK\x03\x04"
                              and p.suffix != ".npz"):
        arrays = check_architecture(read_state_dict(p), path)
        return arrays, arrays_sha256(arrays)
    if shipped:
        from ser.outputs import sha256_file

        digest = sha256_file(p)
        if digest != SHIPPED_SHA256:
            raise CheckpointError(f"{p}: sha256 {digest} differs from the shipped weights' "
                                  f"{SHIPPED_SHA256}; the package is damaged, reinstall it")
    try:
        with np.load(p, allow_pickle=False) as npz:
            raw = {k: npz[k] for k in npz.files}
    except (OSError, ValueError, EOFError) as exc:
        raise CheckpointError(f"{p}: not a weights .npz ({type(exc).__name__}: "
                              f"{str(exc)[:80]})") from None
    meta_raw = raw.pop("meta", None)
    arrays = check_architecture(raw, path)
    digest = arrays_sha256(arrays)
    if meta_raw is not None:
        try:
            expected = json.loads(str(meta_raw))["arrays_sha256"]
        except (ValueError, KeyError, TypeError):
            raise CheckpointError(f"{p}: unreadable 'meta' entry") from None
        if expected != digest:
            raise CheckpointError(f"{p}: checksum mismatch (arrays {digest[:12]}..., meta "
                                  f"says {str(expected)[:12]}...); the file is damaged, "
                                  "convert the checkpoint again")
    return arrays, digest


def resolve_weights_path(weights: str | Path | None) -> Path:
    """``byols.weights``: ``None`` is the shipped file; else the user's path."""
    if weights is None:
        return weights_dir() / SHIPPED_WEIGHTS
    path = Path(weights).expanduser()
    if not path.is_file():
        raise ConfigError(f"byols.weights: {path}: no such file; point it at a BYOL-S "
                          ".pth/.npz or set it to null for the shipped weights")
    return path


def load_weights(weights: str | Path | None = None) -> tuple[dict[str, np.ndarray], str]:
    """``(arrays, content sha256)`` of the shipped weights or of a user's ``.npz``/``.pth``.

    Raises :class:`CheckpointError` (one line) on a missing, damaged (checksum), unsafe or
    mismatched (keys, shapes) file.
    """
    path = resolve_weights_path(weights)
    arrays, digest = _load_weights_cached(str(path.resolve()), path.stat().st_mtime_ns)
    return dict(arrays), digest


# --------------------------------------------------------------------------- front end

@functools.cache
def mel_filterbank() -> np.ndarray:
    """``(64, 513)`` float32 HTK mel filters 60-7,800 Hz, no normalisation (read-only)."""
    import librosa

    fb = librosa.filters.mel(sr=SAMPLE_RATE, n_fft=N_FFT, n_mels=N_MELS, fmin=F_MIN,
                             fmax=F_MAX, htk=True, norm=None, dtype=np.float32)
    fb.setflags(write=False)
    return fb


@functools.cache
def _window() -> np.ndarray:
    # torch.hann_window(400) (periodic); torch.stft centres it in the n_fft frame, but the
    # power spectrum does not depend on where the 400 non-zero samples sit in the frame.
    n = np.arange(WIN_LENGTH)
    w = 0.5 - 0.5 * np.cos(2.0 * np.pi * n / WIN_LENGTH)
    w.setflags(write=False)
    return w


def n_frames_of(n_samples: int) -> int:
    """Frames of the centred STFT of ``n_samples`` samples."""
    return 1 + n_samples // HOP_LENGTH


def byols_logmel(y: np.ndarray) -> np.ndarray:
    """The original front end of a 16 kHz mono clip: ``(frames, 64)`` float32 log-mel.

    ``frames = 1 + len(y) // 160``; the clip needs at least ``N_FFT // 2 + 1`` samples
    (reflect padding) - :func:`prepare_byols_signal` refuses shorter ones.
    """
    y = np.asarray(y, np.float32)
    half = N_FFT // 2
    if y.ndim != 1 or y.shape[0] <= half:
        raise FeatureError(f"need a mono clip of more than {half} samples, got {y.shape}")
    padded = np.pad(y, half, mode="reflect")
    n = n_frames_of(y.shape[0])
    offset = (N_FFT - WIN_LENGTH) // 2
    fb, win = mel_filterbank(), _window()
    out = np.empty((n, N_MELS), np.float32)
    for start in range(0, n, _STFT_BLOCK):
        stop = min(n, start + _STFT_BLOCK)
        seg = padded[start * HOP_LENGTH + offset:(stop - 1) * HOP_LENGTH + offset + WIN_LENGTH]
        frames = np.lib.stride_tricks.as_strided(
            seg, shape=(stop - start, WIN_LENGTH), strides=(HOP_LENGTH * 4, 4),
            writeable=False)
        spec = np.fft.rfft(frames * win, n=N_FFT, axis=-1)
        power = (spec.real ** 2 + spec.imag ** 2).astype(np.float32)
        with single_threaded_blas():  # a small product: threads only cost (and vary)
            mel = power @ fb.T
        out[start:stop] = np.log(mel + np.float32(LOG_EPS))
    return out


def signal_params(params: Mapping[str, Any] | FeatureParams) -> FeatureParams:
    """The ``mfcc:`` decoding settings (trim, ``max_seconds``, pad) at 16 kHz."""
    fp = params if isinstance(params, FeatureParams) else FeatureParams.from_mapping(params)
    return FeatureParams.from_mapping(asdict(fp) | {"sample_rate": SAMPLE_RATE,
                                                    "fmin": 0.0, "fmax": None})


def prepare_byols_signal(y: np.ndarray, fp: FeatureParams) -> np.ndarray:
    """Trim / truncate / pad a 16 kHz clip like the other sets; refuse too short ones."""
    from ser.features.mfcc import prepare_signal

    y = prepare_signal(np.asarray(y, np.float32), params=fp)
    need = TIME_STRIDE * HOP_LENGTH
    if y.shape[0] < need:
        raise FeatureError(f"too short for the BYOL-S encoder ({y.shape[0] / SAMPLE_RATE:.3f} s "
                           f"after trimming; need {need / SAMPLE_RATE:.2f} s)")
    return y


def logmel_from_file(path: str | Path, *, params: Mapping[str, Any] | FeatureParams,
                     ) -> np.ndarray:
    """Decode ``path`` (16 kHz, at most ``max_seconds`` + margin) -> :func:`byols_logmel`."""
    from ser.audio import load_audio
    from ser.features.mfcc import read_seconds

    fp = signal_params(params)
    y, _ = load_audio(path, sr=SAMPLE_RATE, max_seconds=read_seconds(fp))
    try:
        return byols_logmel(prepare_byols_signal(y, fp))
    except FeatureError as exc:
        raise FeatureError(exc.reason, path) from None


# --------------------------------------------------------------------------- encoder

def _keras():
    import keras

    return keras


@functools.cache
def _layers() -> dict[str, type]:
    """The encoder's two small custom layers (defined on first use: Keras imports JAX)."""
    keras = _keras()
    from keras import ops

    @keras.saving.register_keras_serializable(package="ser_byols")
    class TimeMask(keras.layers.Layer):
        """Zero every time step at or past ``lengths // stride`` (bucket padding)."""

        def __init__(self, stride: int = 1, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.stride = int(stride)

        def call(self, x, lengths):
            valid = ops.floor_divide(ops.cast(lengths, "int32"), self.stride)
            steps = ops.arange(ops.shape(x)[1], dtype="int32")
            mask = ops.cast(ops.expand_dims(steps, 0) < ops.expand_dims(valid, 1), x.dtype)
            return x * ops.reshape(mask, (ops.shape(x)[0], ops.shape(x)[1])
                                   + (1,) * (len(x.shape) - 2))

        def get_config(self) -> dict[str, Any]:
            return super().get_config() | {"stride": self.stride}

    @keras.saving.register_keras_serializable(package="ser_byols")
    class MeanMaxPool(keras.layers.Layer):
        """Mean + max over each clip's own frames (``lengths // stride`` of them)."""

        def __init__(self, stride: int = TIME_STRIDE, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.stride = int(stride)

        def call(self, x, lengths):
            valid = ops.maximum(ops.floor_divide(ops.cast(lengths, "int32"), self.stride), 1)
            steps = ops.arange(ops.shape(x)[1], dtype="int32")
            mask = ops.expand_dims(ops.expand_dims(steps, 0) < ops.expand_dims(valid, 1), -1)
            total = ops.sum(ops.where(mask, x, 0.0), axis=1)
            mean = total / ops.cast(ops.expand_dims(valid, -1), x.dtype)
            return mean + ops.max(ops.where(mask, x, -np.inf), axis=1)

        def get_config(self) -> dict[str, Any]:
            return super().get_config() | {"stride": self.stride}

    return {"TimeMask": TimeMask, "MeanMaxPool": MeanMaxPool}


def build_encoder(arrays: Mapping[str, np.ndarray], *, pooled: bool = True,
                  dropout: float = 0.3):
    """The AudioNTT2020 encoder as a Keras model with the given weights.

    Parameters
    ----------
    arrays
        The state dict (:func:`load_weights`; torch names and layouts).
    pooled
        ``True``: outputs the ``(batch, 512)`` clip embedding (mean + max over time);
        ``False``: the ``(batch, frames // 8, 512)`` frame outputs of the last layer.
    dropout
        Rate of the Dropout between the two Dense layers (active only when training,
        e.g. fine-tuning; the original's rate is not in the checkpoint).

    Inputs are ``logmel`` ``(batch, frames, 64)`` (standardised log-mel, zero-padded past
    each clip's end) and ``lengths`` ``(batch,)`` int32 (each clip's own frame count).
    The layers use Keras' channels-last layout with (time, mel) as the image axes, so the
    flattened frame vector is ``mel * 64 + channel`` exactly as in the original.
    """
    keras = _keras()
    L = keras.layers
    custom = _layers()
    arrays = check_architecture(arrays, "weights")
    logmel = keras.Input((None, N_MELS), name="logmel")
    lengths = keras.Input((), dtype="int32", name="lengths")
    x = custom["TimeMask"](1, name="input_mask")(logmel, lengths)
    x = L.Reshape((-1, N_MELS, 1), name="as_image")(x)
    for block, (conv, bn) in enumerate(((0, 1), (4, 5), (8, 9))):
        w = arrays[f"features.{conv}.weight"]  # (out, in, mel, time) -> (time, mel, in, out)
        c = L.Conv2D(64, 3, padding="same", name=f"conv{block}")
        x = c(x)
        c.set_weights([np.transpose(w, (3, 2, 1, 0)), arrays[f"features.{conv}.bias"]])
        b = L.BatchNormalization(epsilon=BN_EPS, momentum=0.9, name=f"bn{block}")
        x = b(x)
        b.set_weights([arrays[f"features.{bn}.{k}"]
                       for k in ("weight", "bias", "running_mean", "running_var")])
        x = L.ReLU(name=f"relu{block}")(x)
        x = L.MaxPooling2D(2, name=f"pool{block}")(x)
        x = custom["TimeMask"](2 ** (block + 1), name=f"mask{block}")(x, lengths)
    x = L.Reshape((-1, 8 * 64), name="frames")(x)
    for name, key, drop in (("fc0", "fc.0", True), ("fc1", "fc.3", False)):
        d = L.Dense(EMBEDDING_DIM, activation="relu", name=name)
        x = d(x)
        d.set_weights([arrays[f"{key}.weight"].T, arrays[f"{key}.bias"]])
        if drop:
            x = L.Dropout(dropout, name="dropout")(x)
    if pooled:
        x = custom["MeanMaxPool"](TIME_STRIDE, name="mean_max")(x, lengths)
    return keras.Model([logmel, lengths], x, name="byols_audiontt2020")


class Encoder:
    """Frozen BYOL-S inference: bucketed, jit-compiled, chunked for long clips."""

    def __init__(self, arrays: Mapping[str, np.ndarray], *, batch_size: int = 16) -> None:
        import jax

        self.model = build_encoder(arrays, pooled=False)
        self.batch_size = max(1, int(batch_size))
        self._tv = [v.value for v in self.model.trainable_variables]
        self._ntv = [v.value for v in self.model.non_trainable_variables]
        model = self.model

        def frames(tv, ntv, x, lengths):
            out, _ = model.stateless_call(tv, ntv, [x, lengths], training=False)
            return out

        self._frames = jax.jit(frames)

    def frame_outputs(self, batch: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        """``(n, frames // 8, 512)`` last-layer outputs of a padded, standardised batch."""
        n = batch.shape[0]
        # Always batch_size rows: one compiled shape per width, and a clip's values never
        # depend on how many clips share its batch (XLA's batch-1 convolution rounds
        # differently), so shards of a corpus give the same bytes as one job.
        rows = max(self.batch_size, n)
        if n < rows:
            batch = np.concatenate([batch, np.zeros((rows - n, *batch.shape[1:]), np.float32)])
            lengths = np.concatenate([lengths, np.zeros(rows - n, np.int32)])
        out = self._frames(self._tv, self._ntv, batch, lengths.astype(np.int32))
        return np.asarray(out)[:n]

    def _long_clip(self, x: np.ndarray) -> np.ndarray:
        """Embedding of one long standardised clip, in overlapping windows of one width."""
        n_out = x.shape[0] // TIME_STRIDE
        width = _round_up(CHUNK_FRAMES + 2 * CONTEXT_FRAMES)
        windows, keep = [], []
        for start in range(0, n_out * TIME_STRIDE, CHUNK_FRAMES):
            lo = max(0, start - CONTEXT_FRAMES)
            hi = min(x.shape[0], start + CHUNK_FRAMES + CONTEXT_FRAMES)
            windows.append(x[lo:hi])
            first = (start - lo) // TIME_STRIDE
            keep.append((first, min(n_out, (start + CHUNK_FRAMES) // TIME_STRIDE)
                         - lo // TIME_STRIDE))
        total = np.zeros(EMBEDDING_DIM, np.float64)
        peak = np.full(EMBEDDING_DIM, -np.inf, np.float32)
        for b in range(0, len(windows), self.batch_size):
            group = windows[b:b + self.batch_size]
            batch = np.stack([_pad_to(w, width) for w in group])
            lens = np.array([w.shape[0] for w in group], np.int32)
            out = self.frame_outputs(batch, lens)
            for row, (first, last) in enumerate(keep[b:b + self.batch_size]):
                part = out[row, first:last]
                total += part.sum(axis=0, dtype=np.float64)
                peak = np.maximum(peak, part.max(axis=0))
        return (total / n_out + peak).astype(np.float32)

    def embed(self, logmels: Sequence[np.ndarray], *, norm_mean: float, norm_std: float,
              ) -> np.ndarray:
        """``(n, 512)`` embeddings of log-mel clips (:func:`byols_logmel` outputs), in
        length buckets (clips padded to the same multiple of :data:`BUCKET_FRAMES`
        batched together); every clip needs at least 8 frames."""
        out = np.empty((len(logmels), EMBEDDING_DIM), np.float32)
        std = np.float32(norm_std)
        mean = np.float32(norm_mean)
        buckets: dict[int, list[int]] = {}
        for i, m in enumerate(logmels):
            if m.shape[0] < TIME_STRIDE:
                raise FeatureError(f"a clip has {m.shape[0]} frames; the encoder needs "
                                   f"{TIME_STRIDE}")
            if m.shape[0] > CHUNK_FRAMES:
                out[i] = self._long_clip((m - mean) / std)
            else:
                buckets.setdefault(_round_up(m.shape[0]), []).append(i)
        for width, members in sorted(buckets.items()):
            for b in range(0, len(members), self.batch_size):
                idx = members[b:b + self.batch_size]
                lens = np.array([logmels[i].shape[0] for i in idx], np.int32)
                batch = np.stack([_pad_to((logmels[i] - mean) / std, width) for i in idx])
                frames = self.frame_outputs(batch, lens)
                for row, i in enumerate(idx):
                    valid = frames[row, :lens[row] // TIME_STRIDE]
                    out[i] = valid.mean(axis=0) + valid.max(axis=0)
        return out


def _round_up(n: int) -> int:
    return max(BUCKET_FRAMES, -(-n // BUCKET_FRAMES) * BUCKET_FRAMES)


def _pad_to(x: np.ndarray, width: int) -> np.ndarray:
    out = np.zeros((width, x.shape[1]), np.float32)
    out[:x.shape[0]] = x
    return out


@functools.lru_cache(maxsize=2)
def _encoder(weights_key: str, batch_size: int, weights: str | None) -> Encoder:
    arrays, _ = load_weights(weights)
    return Encoder(arrays, batch_size=batch_size)


def get_encoder(weights: str | Path | None = None, *, batch_size: int = 16) -> Encoder:
    """A cached :class:`Encoder` of the shipped (or the user's) weights."""
    _, digest = load_weights(weights)
    return _encoder(digest, int(batch_size), None if weights is None else str(weights))


# --------------------------------------------------------------------------- the feature set

def byols_options(params: Mapping[str, Any]) -> dict[str, Any]:
    """The ``byols:`` section (``params['options']`` of the feature-set params), defaulted
    and validated."""
    own = dict(params.get("options") or {})
    out = {"weights": own.get("weights"),
           "norm_mean": float(own.get("norm_mean", DEFAULT_NORM_MEAN)),
           "norm_std": float(own.get("norm_std", DEFAULT_NORM_STD)),
           "batch_size": int(own.get("batch_size", 16))}
    if not out["norm_std"] > 0:
        raise ConfigError(f"byols.norm_std must be positive, got {out['norm_std']:g}")
    return out


def byols_fingerprint(params: Mapping[str, Any]) -> dict[str, Any]:
    """Definition of the ``byols`` embeddings: weights (content checksum), standardisation
    statistics, front end and decoding. Stored with the features and in model cards;
    prediction rebuilds the features from it (:func:`embedding_from_file`)."""
    from ser.features.mfcc import feature_params_fingerprint

    opts = byols_options(params)
    _, digest = load_weights(opts["weights"])
    return {"feature_set": "byols", "byols_version": BYOLS_VERSION,
            "weights": None if opts["weights"] is None else str(opts["weights"]),
            "weights_sha256": digest,
            "norm_mean": opts["norm_mean"], "norm_std": opts["norm_std"],
            "front_end": {"sample_rate": SAMPLE_RATE, "n_fft": N_FFT,
                          "win_length": WIN_LENGTH, "hop_length": HOP_LENGTH,
                          "n_mels": N_MELS, "f_min": F_MIN, "f_max": F_MAX,
                          "mel_scale": "htk", "mel_norm": None, "power": 2.0,
                          "center": True, "pad_mode": "reflect", "log_eps": LOG_EPS},
            "pooling": "mean+max over time",
            "signal": feature_params_fingerprint(signal_params(params))}


def _fingerprint_params(fingerprint: Mapping[str, Any]) -> dict[str, Any]:
    """Feature-set params rebuilt from a stored fingerprint (model card)."""
    return {**fingerprint["signal"],
            "options": {"weights": fingerprint.get("weights"),
                        "norm_mean": fingerprint["norm_mean"],
                        "norm_std": fingerprint["norm_std"]}}


def _checked_encoder(fingerprint: Mapping[str, Any]) -> tuple[Encoder, dict[str, Any]]:
    """The encoder of a model whose card holds ``fingerprint`` (its weights checked against
    the stored checksum) and the rebuilt feature-set params."""
    params = _fingerprint_params(fingerprint)
    opts = byols_options(params)
    encoder = get_encoder(opts["weights"])
    _, digest = load_weights(opts["weights"])
    if digest != fingerprint.get("weights_sha256"):
        raise ConfigError(f"byols weights {opts['weights'] or 'shipped'} (sha256 "
                          f"{digest[:12]}...) are not the ones the model was trained with "
                          f"({str(fingerprint.get('weights_sha256'))[:12]}...)")
    return encoder, params


def embeddings_from_files(paths: Sequence[str | Path], *, fingerprint: Mapping[str, Any],
                          ) -> tuple[list[str], np.ndarray, list[tuple[str, str]]]:
    """``(ok_paths, (n, 512) embeddings, failures)`` of files, for a model whose card holds
    ``fingerprint``: its weights (checked against the stored checksum) and its exact
    standardisation statistics."""
    encoder, params = _checked_encoder(fingerprint)
    opts = byols_options(params)
    ok, mels, failures = [], [], []
    for path in paths:
        try:
            mels.append(logmel_from_file(path, params=params))
            ok.append(str(path))
        except SerError as exc:
            failures.append((str(path), str(exc)))
    emb = (encoder.embed(mels, norm_mean=opts["norm_mean"], norm_std=opts["norm_std"])
           if mels else np.empty((0, EMBEDDING_DIM), np.float32))
    return ok, emb, failures


def embedding_from_signal(y: np.ndarray, *, fingerprint: Mapping[str, Any]) -> np.ndarray:
    """The 512 embedding values of 16 kHz mono samples (a segment of a long recording),
    trimmed and cut as the extraction stage does."""
    encoder, params = _checked_encoder(fingerprint)
    opts = byols_options(params)
    mel = byols_logmel(prepare_byols_signal(y, signal_params(params)))
    return encoder.embed([mel], norm_mean=opts["norm_mean"], norm_std=opts["norm_std"])[0]


def embedding_from_file(path: str | Path, *, fingerprint: Mapping[str, Any]) -> np.ndarray:
    """The 512 embedding values of one file (raises its one-line error)."""
    _, emb, failures = embeddings_from_files([path], fingerprint=fingerprint)
    if failures:
        raise FeatureError(failures[0][1].removeprefix(f"{path}: "), path)
    return emb[0]


def _logmel_item(item: tuple[int, str], params: Mapping[str, Any],
                 ) -> tuple[int, np.ndarray | None, str]:
    index, path = item
    try:
        return index, logmel_from_file(path, params=params), ""
    except SerError as exc:
        return index, None, str(exc)


def _logmel_pool(workers: int):
    """A process pool for the front end (``None``: run in this process).

    Forked, with every worker started at once, when JAX is not loaded yet (call this
    before :func:`get_encoder`); otherwise forkserver (forking a process that runs JAX's
    threads can deadlock), with the front end's libraries preloaded in the server once.
    """
    if workers <= 1:
        return None
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    from ser.features.corpus_sets import _init_worker

    if "jax" not in sys.modules and "fork" in multiprocessing.get_all_start_methods():
        pool = ProcessPoolExecutor(max_workers=workers, initializer=_init_worker,
                                   mp_context=multiprocessing.get_context("fork"))
        pool.submit(int).result()  # fork context: launches every worker now, before JAX
        return pool
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["ser.features.byols", "librosa", "soxr"])
    return ProcessPoolExecutor(max_workers=workers, initializer=_init_worker, mp_context=ctx)


def _iter_logmels(items: list[tuple[int, str]], params: Mapping[str, Any], pool: Any,
                  ) -> Iterator[tuple[int, np.ndarray | None, str]]:
    if pool is None or len(items) < 2:
        for item in items:
            yield _logmel_item(item, params)
        return
    yield from pool.map(functools.partial(_logmel_item, params=params), items, chunksize=4)


#: Clips whose log-mels are held at once during extraction (memory flat in corpus size).
BLOCK_CLIPS = 256


def extract_byols(manifest: Any, out_dir: str | Path, *, params: Mapping[str, Any],
                  workers: int | None = None, progress: bool = True, desc: str = "byols",
                  rows: tuple[int, int] | None = None):
    """Write ``summary.parquet`` (manifest columns + ``feat_byols_*``) and ``skipped.csv``.

    Log-mels are computed by ``workers`` processes, ``BLOCK_CLIPS`` clips at
    a time, and encoded in this process in length buckets.

    Parameters
    ----------
    manifest
        Manifest Parquet path or frame (``path`` column and the other manifest columns).
    out_dir
        Output folder, replaced atomically on success only.
    params
        The ``mfcc:`` section (decoding) with the ``byols:`` section under ``options``
        (:func:`ser.features.sets.feature_set_params`).
    workers
        Processes; ``None``: the set's ``workers``.
    progress
        Show a progress bar on stderr.
    desc
        Progress-bar label.
    rows
        ``(start, stop)``: only these manifest rows (one shard, :mod:`ser.features.shards`).

    Returns
    -------
    ExtractionResult
    """
    import pandas as pd
    from tqdm import tqdm

    from ser.features.corpus_sets import (
        _check_rows,
        _manifest,
        _write_skipped,
        write_summary_frame,
    )
    from ser.features.extract import SKIPPED_FILE, SUMMARY_FILE, ExtractionResult, resolve_workers
    from ser.outputs import atomic_path

    start = time.perf_counter()
    table = _manifest(manifest, rows)
    opts = byols_options(params)
    fingerprint = byols_fingerprint(params)
    n_workers = resolve_workers(workers, params={"workers": params.get("workers", 1)})
    items = [(i, str(p)) for i, p in enumerate(table["path"])]
    good_idx: list[int] = []
    embeddings: list[np.ndarray] = []
    skipped: list[tuple[str, str]] = []
    pool = _logmel_pool(n_workers if len(items) > 1 else 1)  # before JAX loads
    try:
        encoder = get_encoder(opts["weights"], batch_size=opts["batch_size"])
    except BaseException:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
        raise
    with tqdm(total=len(items), unit="file", desc=desc, disable=not progress,
              file=sys.stderr) as bar, contextlib.ExitStack() as stack:
        if pool is not None:
            stack.enter_context(pool)
        for b in range(0, len(items), BLOCK_CLIPS):
            block = items[b:b + BLOCK_CLIPS]
            mels: list[np.ndarray] = []
            for i, mel, reason in _iter_logmels(block, params, pool):
                if mel is None:
                    skipped.append((items[i][1], reason))
                else:
                    good_idx.append(i)
                    mels.append(mel)
                bar.update()
            if mels:
                embeddings.append(encoder.embed(mels, norm_mean=opts["norm_mean"],
                                                norm_std=opts["norm_std"]))
    for path, reason in skipped:
        print(f"warning: skipped {path}: {reason}", file=sys.stderr)
    _check_rows(len(good_idx), len(items), skipped, shard=rows is not None)
    base = table.iloc[good_idx].reset_index(drop=True)
    feats = (np.concatenate(embeddings) if embeddings
             else np.empty((0, EMBEDDING_DIM), np.float32))
    out = pd.concat([base, pd.DataFrame(feats, columns=FEATURE_NAMES)], axis=1)
    with atomic_path(out_dir) as tmp:
        tmp.mkdir()
        if len(out):
            write_summary_frame(out, fingerprint, tmp / SUMMARY_FILE)
        _write_skipped(tmp / SKIPPED_FILE, skipped)
    return ExtractionResult(out_dir=Path(out_dir), n_files=len(items), n_rows=len(out),
                            skipped=skipped, workers=n_workers,
                            seconds=time.perf_counter() - start)


def norm_stats(logmels: Sequence[np.ndarray]) -> tuple[float, float]:
    """Mean and std of every log-mel value of the given clips (float64 accumulation)."""
    count, total, squares = 0, 0.0, 0.0
    for m in logmels:
        m64 = np.asarray(m, np.float64)
        count += m64.size
        total += float(m64.sum())
        squares += float(np.square(m64).sum())
    if count == 0:
        raise SerError("no frames to compute statistics from")
    mean = total / count
    return mean, float(np.sqrt(max(squares / count - mean * mean, 0.0)))


# --------------------------------------------------------------------------- command line

def main(argv: Sequence[str] | None = None) -> int:
    """``python -m ser.features.byols {convert,stats}``."""
    import argparse

    from ser.cli import run_cli

    parser = argparse.ArgumentParser(
        prog="python -m ser.features.byols",
        description="BYOL-S weights and statistics for the byols feature set.")
    sub = parser.add_subparsers(dest="command", required=True)
    conv = sub.add_parser("convert", help="convert a torch.save .pth state dict into the "
                          "pickle-free .npz the feature set loads (no torch needed)")
    conv.add_argument("src", type=Path, help="the .pth checkpoint")
    conv.add_argument("--out", type=Path, default=None,
                      help="output .npz (default: the package's shipped weights file)")
    conv.add_argument("--sha256", default=ORIGINAL_SHA256,
                      help="expected sha256 of the .pth (default: the original BYOL-S "
                           "checkpoint's); 'none' skips the check for another checkpoint")
    conv.add_argument("--source-commit", default=ORIGINAL_COMMIT)
    st = sub.add_parser("stats", help="mean and std of the log-mel input over training "
                        "recordings (the byols.norm_mean / norm_std of params.yaml)")
    st.add_argument("inputs", nargs="+", type=Path, help="audio files or folders (recursive)")
    st.add_argument("--params", type=Path, default=Path("params.yaml"),
                    help="params.yaml whose mfcc: section defines decoding")
    args = parser.parse_args(argv)

    def run(_argv: Any) -> int:
        if args.command == "convert":
            out = args.out or weights_dir() / SHIPPED_WEIGHTS
            expected = None if args.sha256.lower() == "none" else args.sha256
            meta = convert_checkpoint(args.src, out, expected_sha256=expected,
                                      source_commit=args.source_commit)
            from ser.outputs import sha256_file

            print(f"wrote {out} (arrays sha256 {meta['arrays_sha256']}, file sha256 "
                  f"{sha256_file(out)})")
            return 0
        from ser.params.load import load_params

        mfcc = load_params(args.params)["mfcc"]
        files = sorted(f for p in args.inputs for f in (p.rglob("*") if p.is_dir() else [p])
                       if f.is_file() and f.suffix.lower() in (".wav", ".flac", ".ogg"))
        mels = []
        for f in files:
            try:
                mels.append(logmel_from_file(f, params=mfcc))
            except SerError as exc:
                print(f"warning: skipped {exc}", file=sys.stderr)
        mean, std = norm_stats(mels)
        print(f"{len(mels)} files: norm_mean: {mean:.6f}  norm_std: {std:.6f}")
        return 0

    return run_cli(run)


if __name__ == "__main__":
    sys.exit(main())
