"""The parameters that define the MFCC features: the ``mfcc:`` section of ``params.yaml``,
validated (:class:`FeatureParams`; the definition itself is :mod:`ser.features.mfcc`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from ser.errors import ConfigError


@dataclass(frozen=True, slots=True)
class FeatureParams:
    """The parameters that define the MFCC features (hashable, validated).

    Build it with :meth:`from_mapping` from the ``mfcc:`` section of
    ``params.yaml``, from the whole parameters mapping, or from a stored
    :func:`feature_params_fingerprint`.
    """

    sample_rate: int
    n_mfcc: int
    n_fft: int
    hop_length: int
    n_mels: int
    fmin: float = 0.0
    fmax: float | None = None
    deltas: int = 0
    trim_db: float | None = None
    max_seconds: float | None = None
    pad: str = "none"

    @classmethod
    def from_mapping(cls, params: Mapping[str, Any] | FeatureParams) -> FeatureParams:
        """Validate and normalise parameters.

        Parameters
        ----------
        params
            The ``mfcc:`` section, a whole parameters mapping holding one, a
            fingerprint, or a :class:`FeatureParams` (returned unchanged).
            Unknown keys (``workers``, the fingerprint's fixed choices) are
            ignored.

        Raises
        ------
        ConfigError
            If a required key is missing or a value is out of range.
        """
        if isinstance(params, FeatureParams):
            return params
        if not isinstance(params, Mapping):
            raise ConfigError(f"mfcc parameters must be a mapping, got {type(params).__name__}")
        if "mfcc" in params and isinstance(params["mfcc"], Mapping):
            params = params["mfcc"]
        missing = [k for k in ("sample_rate", "n_mfcc", "n_fft", "hop_length", "n_mels")
                   if k not in params]
        if missing:
            raise ConfigError(f"mfcc parameters: missing {', '.join(missing)}")
        try:
            fp = cls(
                sample_rate=_int(params, "sample_rate"),
                n_mfcc=_int(params, "n_mfcc"),
                n_fft=_int(params, "n_fft"),
                hop_length=_int(params, "hop_length"),
                n_mels=_int(params, "n_mels"),
                fmin=float(params.get("fmin") or 0.0),
                fmax=_opt_float(params.get("fmax")),
                deltas=_int(params, "deltas", 0),
                trim_db=_opt_float(params.get("trim_db")),
                max_seconds=_opt_float(params.get("max_seconds")),
                pad=str(params.get("pad", "none")),
            )
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"mfcc parameters: {exc}") from None
        fp._validate()
        return fp

    def _validate(self) -> None:
        for name in ("sample_rate", "n_mfcc", "n_fft", "hop_length", "n_mels"):
            if getattr(self, name) < 1:
                raise ConfigError(f"mfcc.{name} must be a positive integer")
        if self.n_mfcc > self.n_mels:
            raise ConfigError(f"mfcc.n_mfcc ({self.n_mfcc}) cannot exceed mfcc.n_mels "
                              f"({self.n_mels})")
        if self.deltas not in (0, 1, 2):
            raise ConfigError(f"mfcc.deltas must be 0, 1 or 2, got {self.deltas}")
        if self.pad not in ("none", "zeros"):
            raise ConfigError(f"mfcc.pad must be 'none' or 'zeros', got {self.pad!r}")
        if self.pad == "zeros" and self.max_seconds is None:
            raise ConfigError("mfcc.pad is 'zeros' but mfcc.max_seconds is null; "
                              "set max_seconds (the length to pad to) or use pad: none")
        nyquist = self.sample_rate / 2
        fmax = nyquist if self.fmax is None else self.fmax
        if not 0 <= self.fmin < fmax <= nyquist:
            raise ConfigError(f"mfcc: need 0 <= fmin < fmax <= sample_rate/2 ({nyquist:g}), "
                              f"got fmin={self.fmin:g}, fmax={fmax:g}")
        for name in ("trim_db", "max_seconds"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ConfigError(f"mfcc.{name} must be positive or null, got {value:g}")

    @property
    def n_coeffs(self) -> int:
        """Coefficients per frame: ``n_mfcc * (1 + deltas)``."""
        return self.n_mfcc * (1 + self.deltas)

    @property
    def max_samples(self) -> int | None:
        """``max_seconds`` in samples at ``sample_rate`` (``None``: no limit)."""
        if self.max_seconds is None:
            return None
        return max(1, int(round(self.max_seconds * self.sample_rate)))


def _int(params: Mapping[str, Any], key: str, default: int | None = None) -> int:
    value = params.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{key} must be an integer, got {value!r}")
    return int(value)


def _opt_float(value: Any) -> float | None:
    return None if value is None else float(value)
