"""The demo synthesiser's speakers and emotions: prosodic dimensions, how each emotion
shifts them (:data:`EMOTION_PROSODY`), a speaker's voice and habits, the recording
chain, and the prosody of one clip (see :mod:`ser.corpora.demo.synth`)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

#: Prosodic / voice-quality dimensions that emotions, speakers and clips modulate.
PROSODY_DIMS: tuple[str, ...] = (
    "f0_st",      # mean pitch offset (semitones)
    "range",      # pitch-range multiplier (accents, declination)
    "tempo",      # speaking-rate multiplier
    "energy_db",  # level offset (dB)
    "tilt_db",    # extra spectral tilt (dB/octave; > 0 darker)
    "oq",         # glottal open quotient (0.4 tense ... 0.75 breathy)
    "jitter",     # per-period f0 perturbation (relative s.d.)
    "shimmer",    # per-period amplitude perturbation (relative s.d.)
    "breath",     # aspiration-noise level relative to the pulses
    "formant",    # relative formant shift (lip spreading, jaw opening)
    "final_st",   # boundary tone on the last syllable (semitones; > 0 rises)
    "tremor_st",  # 5-7 Hz pitch tremor depth (semitones)
    "pause",      # probability of a pause between words
    "reduction",  # vowel reduction towards schwa in unstressed syllables
)

#: Dimensions that combine multiplicatively (offsets live in log space).
_LOG_DIMS = frozenset({"range", "tempo", "jitter", "shimmer", "breath"})

#: Typical spread of each dimension (one "unit" of speaker or clip variation).
PROSODY_UNITS: dict[str, float] = {
    "f0_st": 1.0, "range": 0.15, "tempo": 0.05, "energy_db": 1.5, "tilt_db": 1.0,
    "oq": 0.04, "jitter": 0.25, "shimmer": 0.25, "breath": 0.25, "formant": 0.012,
    "final_st": 1.5, "tremor_st": 0.06, "pause": 0.04, "reduction": 0.08,
}

_P = PROSODY_DIMS
#: Prosody of each unified emotion, loosely after the vocal-affect literature
#: (Scherer 1986, 2003; Murray & Arnott 1993; Banse & Scherer 1996).
EMOTION_PROSODY: dict[str, dict[str, float]] = {
    name: dict(zip(_P, values, strict=True))
    for name, values in {
        # columns: f0_st range tempo energy_db tilt_db oq jitter |
        #          shimmer breath formant final_st tremor_st pause reduction
        "neutral": (0.0, 1.00, 1.00, 0.0, 0.0, 0.60, 0.006,
                    0.035, 0.06, 0.000, -2.5, 0.00, 0.06, 0.45),
        "calm": (-1.0, 0.75, 0.90, -3.0, 1.5, 0.64, 0.006,
                 0.035, 0.09, -0.010, -2.5, 0.00, 0.10, 0.50),
        "happy": (3.5, 1.50, 1.08, 3.0, -1.5, 0.52, 0.008,
                  0.045, 0.06, 0.035, -1.0, 0.00, 0.05, 0.35),
        "sad": (-2.0, 0.55, 0.80, -5.0, 3.5, 0.72, 0.013,
                0.060, 0.16, -0.030, -3.0, 0.12, 0.18, 0.60),
        "angry": (3.0, 1.45, 1.12, 7.0, -4.0, 0.42, 0.012,
                  0.050, 0.04, 0.030, -4.5, 0.00, 0.04, 0.25),
        "fearful": (6.0, 1.15, 1.15, 1.0, 0.5, 0.58, 0.020,
                    0.070, 0.13, 0.020, 1.0, 0.45, 0.14, 0.45),
        "disgust": (-1.5, 1.25, 0.85, 1.5, 1.0, 0.52, 0.014,
                    0.060, 0.08, -0.020, -4.5, 0.00, 0.10, 0.40),
        "surprised": (4.0, 1.70, 1.00, 3.0, -1.5, 0.55, 0.008,
                      0.045, 0.08, 0.020, 6.0, 0.00, 0.05, 0.35),
        "boredom": (-3.0, 0.35, 0.80, -4.0, 2.5, 0.68, 0.007,
                    0.040, 0.10, -0.030, -1.0, 0.00, 0.12, 0.65),
    }.items()
}


def _to_offsets(values: dict[str, float]) -> np.ndarray:
    """Express a prosody dict as offsets from neutral (log space for _LOG_DIMS)."""
    neutral = EMOTION_PROSODY["neutral"]
    out = np.empty(len(_P))
    for i, dim in enumerate(_P):
        if dim in _LOG_DIMS:
            out[i] = np.log(values[dim] / neutral[dim])
        else:
            out[i] = values[dim] - neutral[dim]
    return out


def _from_offsets(offsets: np.ndarray) -> dict[str, float]:
    """Inverse of :func:`_to_offsets`, clamped to physically sensible values."""
    neutral = EMOTION_PROSODY["neutral"]
    out: dict[str, float] = {}
    for i, dim in enumerate(_P):
        if dim in _LOG_DIMS:
            out[dim] = float(neutral[dim] * np.exp(offsets[i]))
        else:
            out[dim] = float(neutral[dim] + offsets[i])
    out["oq"] = float(np.clip(out["oq"], 0.3, 0.85))
    out["tremor_st"] = max(out["tremor_st"], 0.0)
    out["pause"] = float(np.clip(out["pause"], 0.0, 0.5))
    out["reduction"] = float(np.clip(out["reduction"], 0.0, 0.9))
    out["tempo"] = float(np.clip(out["tempo"], 0.7, 1.45))
    out["energy_db"] = float(np.clip(out["energy_db"], -10.0, 10.0))
    out["f0_st"] = float(np.clip(out["f0_st"], -6.0, 9.0))
    out["tilt_db"] = float(np.clip(out["tilt_db"], -3.0, 4.5))
    out["formant"] = float(np.clip(out["formant"], -0.08, 0.08))
    out["jitter"] = min(out["jitter"], 0.05)
    out["shimmer"] = min(out["shimmer"], 0.25)
    out["breath"] = min(out["breath"], 0.6)
    out["range"] = float(np.clip(out["range"], 0.15, 3.0))
    return out


_DELTAS = {name: _to_offsets(values) for name, values in EMOTION_PROSODY.items()}
_UNITS = np.array([PROSODY_UNITS[d] for d in _P])


# --------------------------------------------------------------------------- recording / voice


@dataclass(frozen=True)
class Recording:
    """How a corpus was recorded and acted (acoustic side of a corpus' layout).

    Attributes
    ----------
    lead, trail
        Ranges (s) of the silence before and after the speech.
    level_db, level_sd
        Speech RMS level (dBFS) of a neutral clip, and its spread across speakers.
    noise_db, noise_sd
        Background-noise RMS level (dBFS), and its spread across speakers.
    hum_prob
        Share of speakers recorded with audible mains hum.
    lowpass_hz
        Upper band edge of the recording chain (``None``: no extra roll-off).
    expressiveness
        Scales every emotion's deviation from neutral (acting strength).
    style_sd
        Per-speaker, per-emotion style offsets in prosody units (how
        idiosyncratically each actor portrays each emotion).
    style_scale_sd
        Per-speaker, per-emotion spread of the emotion's strength (relative).
    clip_sd
        Clip-to-clip variation in prosody units.
    habit_sd
        Spread of the speakers' own neutral prosody and voice quality, in units.
    channel_db
        Spread (dB) of the per-speaker microphone colouring.
    """

    lead: tuple[float, float] = (0.1, 0.3)
    trail: tuple[float, float] = (0.1, 0.3)
    level_db: float = -24.0
    level_sd: float = 2.0
    noise_db: float = -62.0
    noise_sd: float = 3.0
    hum_prob: float = 0.0
    lowpass_hz: float | None = None
    expressiveness: float = 1.0
    style_sd: float = 1.0
    style_scale_sd: float = 0.3
    clip_sd: float = 1.0
    habit_sd: float = 0.7
    channel_db: float = 3.0


@dataclass(frozen=True)
class Voice:
    """One synthetic speaker: anatomy, habits, emotional style and channel.

    Build it with :func:`make_voice`; all fields are plain numbers/arrays.
    """

    sex: str
    age: int
    f0_hz: float
    formant_scale: float
    habits: np.ndarray = field(repr=False)
    styles: dict[str, np.ndarray] = field(repr=False)
    style_scales: dict[str, float] = field(repr=False)
    level_db: float = -24.0
    noise_db: float = -62.0
    noise_slope: float = 0.8
    hum_db: float | None = None
    hum_hz: float = 60.0
    highpass_hz: float = 80.0
    lowpass_hz: float | None = None
    eq: tuple[tuple[float, float, float], ...] = ()
    recording: Recording = field(default_factory=Recording, repr=False)


def make_voice(sex: str, age: int, rng: np.random.Generator, recording: Recording) -> Voice:
    """Draw a speaker: base pitch by sex and age, vocal-tract length, habits, style.

    Parameters
    ----------
    sex
        ``"female"`` or ``"male"``.
    age
        In years; older voices get a lower (female) or higher (male) pitch,
        more jitter and breathiness.
    rng
        The speaker's own generator (see :func:`derive_rng`).
    recording
        The corpus' recording conditions.

    Returns
    -------
    Voice
    """
    female = sex == "female"
    older = max(0.0, (age - 40) / 30.0)
    if female:
        f0 = rng.normal(210.0, 18.0) * (1.0 - 0.10 * older)
        scale = rng.normal(1.16, 0.035)
    else:
        f0 = rng.normal(118.0, 13.0) * (1.0 + 0.06 * older)
        scale = rng.normal(1.0, 0.035)
    habits = rng.normal(0.0, recording.habit_sd, len(_P))
    habits[_P.index("f0_st")] = 0.0  # pitch lives in f0_hz
    habits[_P.index("jitter")] += 0.3 * older
    habits[_P.index("breath")] += 0.3 * older
    styles = {e: rng.normal(0.0, recording.style_sd, len(_P)) * _UNITS for e in EMOTION_PROSODY}
    style_scales = {e: float(np.exp(rng.normal(0.0, recording.style_scale_sd)))
                    for e in EMOTION_PROSODY}
    styles["neutral"] = np.zeros(len(_P))
    n_eq = 3
    eq = tuple(
        (float(np.exp(rng.uniform(np.log(150.0), np.log(7000.0)))),
         float(rng.normal(0.0, recording.channel_db)),
         float(rng.uniform(0.4, 1.2)))
        for _ in range(n_eq)
    )
    hum = None
    if rng.random() < recording.hum_prob:
        hum = float(recording.noise_db + rng.uniform(0.0, 12.0))
    lowpass = recording.lowpass_hz
    if lowpass is not None:
        lowpass = float(lowpass * np.exp(rng.normal(0.0, 0.08)))
    return Voice(
        sex=sex, age=int(age), f0_hz=float(f0), formant_scale=float(scale),
        habits=habits * _UNITS, styles=styles, style_scales=style_scales,
        level_db=float(recording.level_db + rng.normal(0.0, recording.level_sd)),
        noise_db=float(recording.noise_db + rng.normal(0.0, recording.noise_sd)),
        noise_slope=float(rng.uniform(0.3, 1.3)),
        hum_db=hum, hum_hz=float(rng.choice([50.0, 60.0])),
        highpass_hz=float(rng.uniform(50.0, 140.0)), lowpass_hz=lowpass, eq=eq,
        recording=recording,
    )


def clip_prosody(voice: Voice, emotion: str, intensity: float,
                 rng: np.random.Generator) -> dict[str, float]:
    """Prosody of one clip: neutral + habits + acted emotion + style + clip noise.

    Parameters
    ----------
    voice
        The speaker.
    emotion
        A key of :data:`EMOTION_PROSODY` (a unified label).
    intensity
        Strength of the portrayal (1.0 nominal; RAVDESS "strong" and CREMA-D
        "HI" are above, "LO" below).
    rng
        The clip's generator.

    Returns
    -------
    dict
        One value per :data:`PROSODY_DIMS`.
    """
    rec = voice.recording
    strength = rec.expressiveness * intensity * voice.style_scales[emotion]
    offsets = (voice.habits + strength * _DELTAS[emotion] + intensity * voice.styles[emotion]
               + rng.normal(0.0, rec.clip_sd, len(_P)) * _UNITS)
    return _from_offsets(offsets)
