"""A small, vectorised, speech-like synthesiser for the demo corpora.

It is not a text-to-speech system: nobody will understand the words. It is a
source-filter model that produces audio whose *acoustic statistics* behave
like acted emotional speech, so the whole workflow (MFCC, splits, models,
report) has realistic data to run on without any download:

* **Source.** A Rosenberg glottal pulse train (its time derivative, i.e. the
  radiated excitation) driven by a pitch contour: declination, pitch accents
  on stressed syllables, a boundary tone, slow drift, optional tremor, and
  per-period jitter and shimmer. Aspiration noise is gated by the glottal
  cycle; fricatives and plosive bursts are band-shaped noise.
* **Filter.** A cascade of formant resonators (F1-F6) whose targets follow a
  crude letter-to-sound reading of the spoken text (so the same word or
  sentence has the same vowel sequence for every speaker and emotion),
  interpolated between syllables (coarticulation) and scaled by the speaker's
  vocal-tract length. Filtering is done frame by frame in the STFT domain,
  which makes time-varying filters cheap.
* **Prosody.** Emotions change pitch level and range, tempo, energy,
  spectral tilt, voice quality (open quotient, breathiness), jitter/shimmer,
  formant shifts, boundary tones, tremor, pauses and vowel reduction
  (:data:`EMOTION_PROSODY`). Each speaker has habits (a neutral offset) and an
  individual "style" for each emotion, and each clip varies at random, so a
  classifier must generalise across speakers rather than memorise them.
* **Recording.** Per-corpus level, silence at both ends, background noise,
  mains hum and a per-speaker microphone/channel colouring
  (:class:`Recording`).

Everything is driven by a :class:`numpy.random.Generator`; the same seed
gives the same samples.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np

#: Control-track rate (Hz): segment targets are laid out on this grid.
CONTROL_RATE = 400.0

# --------------------------------------------------------------------------- seeds


def derive_rng(seed: int, *keys: object) -> np.random.Generator:
    """Return a generator seeded from ``seed`` and any number of string-able keys.

    The derivation uses SHA-256 of the keys, so it is stable across processes,
    platforms and Python's hash randomisation, and independent streams for
    different keys (corpus, speaker, file) never collide in practice.

    Parameters
    ----------
    seed
        The user's seed.
    *keys
        Anything with a stable ``str()`` (corpus name, speaker id, file name).

    Returns
    -------
    numpy.random.Generator
    """
    text = ":".join([str(int(seed)), *(str(k) for k in keys)])
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    words = np.frombuffer(digest[:16], dtype="<u4").tolist()
    return np.random.default_rng(words)


# --------------------------------------------------------------------------- prosody

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


# --------------------------------------------------------------------------- text -> syllables

#: Vowel formant targets (F1, F2, F3) of an adult male voice, in Hz
#: (after Peterson & Barney 1952 / Hillenbrand et al. 1995).
VOWELS: dict[str, tuple[float, float, float]] = {
    "i": (280, 2250, 2950), "I": (400, 1920, 2560), "e": (420, 2100, 2650),
    "E": (550, 1770, 2490), "ae": (680, 1700, 2410), "a": (750, 1300, 2450),
    "A": (730, 1090, 2440), "O": (580, 880, 2540), "o": (450, 850, 2400),
    "U": (450, 1030, 2380), "u": (310, 870, 2250), "V": (620, 1200, 2390),
    "3": (480, 1350, 1690), "@": (500, 1450, 2450), "6": (600, 1300, 2400),
    "2": (400, 1550, 2250), "Y": (300, 1700, 2150),
}
#: Diphthongs as (start, end) vowels.
DIPHTHONGS: dict[str, tuple[str, str]] = {
    "eI": ("e", "I"), "aI": ("a", "I"), "aU": ("a", "U"), "OI": ("O", "I"), "oU": ("o", "U"),
}


@dataclass(frozen=True)
class Phone:
    """A consonant class: how it is excited and shaped.

    ``kind`` is one of ``stop``, ``fric``, ``asp``, ``nasal``, ``approx``.
    ``burst`` is the noise band (centre Hz, width in octaves) of a stop burst
    or fricative; ``locus`` the formant targets of sonorants.
    """

    kind: str
    voiced: bool
    dur: float
    amp: float = 1.0
    band: tuple[float, float] = (3000.0, 1.0)
    locus: tuple[float, float, float] | None = None


PHONES: dict[str, Phone] = {
    "P": Phone("stop", False, 0.095, 0.6, (900.0, 1.2)),
    "T": Phone("stop", False, 0.090, 0.9, (4500.0, 0.8)),
    "K": Phone("stop", False, 0.095, 0.8, (2300.0, 0.6)),
    "B": Phone("stop", True, 0.065, 0.4, (900.0, 1.2)),
    "D": Phone("stop", True, 0.060, 0.6, (4000.0, 0.9)),
    "G": Phone("stop", True, 0.065, 0.5, (2200.0, 0.7)),
    "F": Phone("fric", False, 0.095, 0.35, (5000.0, 1.6)),
    "TH": Phone("fric", False, 0.090, 0.25, (5500.0, 1.8)),
    "S": Phone("fric", False, 0.105, 1.0, (6200.0, 0.5)),
    "SH": Phone("fric", False, 0.105, 1.0, (3300.0, 0.55)),
    "X": Phone("fric", False, 0.090, 0.6, (1900.0, 0.8)),
    "H": Phone("asp", False, 0.070, 0.5),
    "V": Phone("fric", True, 0.065, 0.25, (5000.0, 1.6)),
    "Z": Phone("fric", True, 0.075, 0.5, (6200.0, 0.5)),
    "ZH": Phone("fric", True, 0.075, 0.5, (3300.0, 0.55)),
    "M": Phone("nasal", True, 0.065, 0.55, locus=(280, 1000, 2200)),
    "N": Phone("nasal", True, 0.060, 0.55, locus=(280, 1500, 2500)),
    "NG": Phone("nasal", True, 0.065, 0.55, locus=(280, 2000, 2600)),
    "L": Phone("approx", True, 0.055, 0.75, locus=(360, 1000, 2700)),
    "R": Phone("approx", True, 0.055, 0.75, locus=(400, 1150, 1600)),
    "W": Phone("approx", True, 0.050, 0.75, locus=(320, 700, 2300)),
    "J": Phone("approx", True, 0.050, 0.75, locus=(280, 2200, 3000)),
}

_VOWEL_GRAPHEMES = {
    "en": {
        "eigh": "eI", "igh": "aI", "ear": "3", "ee": "i", "ea": "i", "ie": "aI", "ei": "eI",
        "ey": "eI", "ai": "eI", "ay": "eI", "oo": "u", "ou": "aU", "ow": "aU", "oi": "OI",
        "oy": "OI", "oa": "oU", "au": "O", "aw": "O", "eu": "u", "ue": "u", "ui": "u",
        "ar": "A", "or": "O", "er": "3", "ir": "3", "ur": "3",
        "a": "ae", "e": "E", "i": "I", "o": "A", "u": "V", "y": "I",
    },
    "de": {
        "ieh": "i", "ie": "i", "ei": "aI", "ai": "aI", "eu": "OI", "äu": "OI", "au": "aU",
        "aa": "a", "ee": "e", "oo": "o", "ah": "a", "eh": "e", "ih": "i", "oh": "o",
        "uh": "u", "er": "6",
        "a": "a", "e": "E", "i": "I", "o": "O", "u": "U", "y": "Y", "ä": "E", "ö": "2", "ü": "Y",
    },
}
_CONSONANT_GRAPHEMES = {
    "en": {
        "tch": ["T", "SH"], "sh": ["SH"], "ch": ["T", "SH"], "th": ["TH"], "ph": ["F"],
        "ck": ["K"], "ng": ["NG"], "qu": ["K", "W"], "wh": ["W"], "gh": [], "kn": ["N"],
        "wr": ["R"], "x": ["K", "S"], "j": ["D", "ZH"], "z": ["Z"], "w": ["W"], "v": ["V"],
        "c": ["K"], "q": ["K"], "s": ["S"], "h": ["H"], "b": ["B"], "d": ["D"], "f": ["F"],
        "g": ["G"], "k": ["K"], "l": ["L"], "m": ["M"], "n": ["N"], "p": ["P"], "r": ["R"],
        "t": ["T"], "y": ["J"], "'": [],
    },
    "de": {
        "sch": ["SH"], "tsch": ["T", "SH"], "ch": ["X"], "ck": ["K"], "ng": ["NG"],
        "tz": ["T", "S"],
        "pf": ["P", "F"], "qu": ["K", "V"], "ph": ["F"], "ß": ["S"], "x": ["K", "S"],
        "j": ["J"], "z": ["T", "S"], "w": ["V"], "v": ["F"], "c": ["K"], "q": ["K"],
        "s": ["S"], "h": ["H"], "b": ["B"], "d": ["D"], "f": ["F"], "g": ["G"], "k": ["K"],
        "l": ["L"], "m": ["M"], "n": ["N"], "p": ["P"], "r": ["R"], "t": ["T"], "y": ["J"],
        "'": [],
    },
}
_LONG_VOWEL = {"a": "eI", "e": "i", "i": "aI", "o": "oU", "u": "u", "y": "aI"}
_FUNCTION_WORDS = frozenset(
    "a an the is are am was be by to of in on at it its it's i i'm i've i'd we we'll you "
    "he she they that this and or but for with as will would have has had do don't my "
    "your our der die das den dem des ein eine einen ich es er sie wir und mit am an "
    "in im auf da so wo was bin ist sind will wird denn dann".split()
)


@dataclass(frozen=True)
class Syllable:
    """One syllable of the text: onset consonants, vowel nucleus, coda consonants."""

    onset: tuple[str, ...]
    vowel: str
    coda: tuple[str, ...]
    stressed: bool
    word_end: bool
    phrase_end: bool


def _graphemes(word: str, table: dict[str, Any]) -> list[str]:
    keys = sorted(table, key=len, reverse=True)
    out, i = [], 0
    while i < len(word):
        for k in keys:
            if word.startswith(k, i):
                out.append(k)
                i += len(k)
                break
        else:
            i += 1  # unknown character: skip
    return out


def _word_syllables(word: str, language: str, *, stressed: bool) -> list[tuple]:
    vtab = _VOWEL_GRAPHEMES[language]
    ctab = _CONSONANT_GRAPHEMES[language]
    long_final = None
    if (language == "en" and len(word) > 2 and word.endswith("e")
            and word[-2] not in "aeiouy" and any(c in "aeiouy" for c in word[:-2])):
        word = word[:-1]  # silent final e lengthens the previous vowel
        long_final = True
    units: list[tuple[str, str]] = []  # ("V", vowel) or ("C", phone)
    last_vowel_key = ""
    i = 0
    vkeys = sorted(vtab, key=len, reverse=True)
    ckeys = sorted(ctab, key=len, reverse=True)
    while i < len(word):
        match = None
        for k in vkeys:
            if word.startswith(k, i):
                # r-coloured graphemes only before a consonant or at the word end
                if k.endswith("r") and i + len(k) < len(word) and word[i + len(k)] in "aeiouyäöü":
                    continue
                # "y" at the start of a word before a vowel is a consonant
                if k == "y" and i == 0 and len(word) > 1 and word[1] in "aeiou":
                    continue
                match = ("V", vtab[k], k)
                break
        if match is None:
            for k in ckeys:
                if word.startswith(k, i):
                    match = ("C", ctab[k], k)
                    break
        if match is None:
            i += 1
            continue
        kind, value, key = match
        if kind == "V":
            units.append(("V", value))
            last_vowel_key = key
        else:
            units.extend(("C", p) for p in value)
        i += len(key)
    vowel_idx = [j for j, u in enumerate(units) if u[0] == "V"]
    if not vowel_idx:
        units.append(("V", "@"))
        vowel_idx = [len(units) - 1]
    if long_final and last_vowel_key in _LONG_VOWEL:
        units[vowel_idx[-1]] = ("V", _LONG_VOWEL[last_vowel_key])
    if language == "de" and len(vowel_idx) > 1 and word.endswith(("e", "en", "el", "em")):
        j = vowel_idx[-1]
        units[j] = ("V", "@")
    sylls = []
    for n, j in enumerate(vowel_idx):
        if n == 0:
            start = 0
        else:  # between vowels: one consonant to the coda if two or more, the rest to the onset
            prev = vowel_idx[n - 1]
            start = prev + 2 if j - prev - 1 >= 2 else prev + 1
        onset = tuple(units[k][1] for k in range(start, j))
        end = vowel_idx[n + 1] if n + 1 < len(vowel_idx) else len(units)
        if n + 1 < len(vowel_idx):
            cons = end - j - 1
            coda_end = j + 1 + (1 if cons >= 2 else 0)
        else:
            coda_end = end
        coda = tuple(units[k][1] for k in range(j + 1, coda_end))
        sylls.append((onset, units[j][1], coda, stressed and n == 0))
    return sylls


def text_to_syllables(text: str, *, language: str = "en",
                      max_syllables: int | None = None) -> list[Syllable]:
    """A crude letter-to-sound reading of ``text`` into syllables.

    Good enough to give every word a stable vowel/consonant skeleton (the
    same text sounds alike for every speaker and emotion); not phonetics.

    Parameters
    ----------
    text
        Words; ``,`` ``.`` ``?`` ``!`` end a phrase.
    language
        ``"en"`` or ``"de"`` (grapheme rules differ).
    max_syllables
        Keep at most this many syllables (whole words), to bound durations.

    Returns
    -------
    list of Syllable
    """
    if language not in _VOWEL_GRAPHEMES:
        raise ValueError(f"unknown language {language!r}")
    out: list[Syllable] = []
    phrases = [p for p in re.split(r"[,.;:?!]", text.lower()) if p.strip()]
    for phrase in phrases:
        words = re.findall(r"[a-zäöüß']+", phrase)
        for w_i, word in enumerate(words):
            parts = _word_syllables(word, language, stressed=word not in _FUNCTION_WORDS)
            if max_syllables is not None and out and len(out) + len(parts) > max_syllables:
                return _close_phrase(out)
            for s_i, (onset, vowel, coda, stress) in enumerate(parts):
                last_in_word = s_i == len(parts) - 1
                out.append(Syllable(onset, vowel, coda, stress, last_in_word,
                                    last_in_word and w_i == len(words) - 1))
    return _close_phrase(out)


def _close_phrase(sylls: list[Syllable]) -> list[Syllable]:
    if sylls and not sylls[-1].phrase_end:
        s = sylls[-1]
        sylls[-1] = Syllable(s.onset, s.vowel, s.coda, s.stressed, True, True)
    return sylls


# --------------------------------------------------------------------------- timeline


@dataclass
class _Timeline:
    """Control tracks on the CONTROL_RATE grid, built segment by segment."""

    av: list[np.ndarray] = field(default_factory=list)     # voicing amplitude
    ah: list[np.ndarray] = field(default_factory=list)     # aspiration (through the tract)
    af: list[np.ndarray] = field(default_factory=list)     # frication (own band)
    fc: list[np.ndarray] = field(default_factory=list)     # frication centre (Hz)
    fbw: list[np.ndarray] = field(default_factory=list)    # frication width (octaves)
    fmt: list[np.ndarray] = field(default_factory=list)    # formants (n, 3), NaN = free
    n: int = 0
    nuclei: list[tuple[int, int, bool, bool]] = field(default_factory=list)

    def add(self, dur: float, *, av: float = 0.0, ah: float = 0.0, af: float = 0.0,
            band: tuple[float, float] = (3000.0, 1.0), start=None, end=None) -> tuple[int, int]:
        m = max(1, int(round(dur * CONTROL_RATE)))
        self.av.append(np.full(m, av))
        self.ah.append(np.full(m, ah))
        self.af.append(np.full(m, af))
        self.fc.append(np.full(m, band[0]))
        self.fbw.append(np.full(m, band[1]))
        if start is None:
            self.fmt.append(np.full((m, 3), np.nan))
        else:
            end = start if end is None else end
            w = np.linspace(0.0, 1.0, m)[:, None]
            self.fmt.append((1.0 - w) * np.asarray(start, float) + w * np.asarray(end, float))
        i0 = self.n
        self.n += m
        return i0, self.n

    def arrays(self) -> dict[str, np.ndarray]:
        return {k: np.concatenate(getattr(self, k)) for k in ("av", "ah", "af", "fc", "fbw", "fmt")}


def _vowel_targets(vowel: str, reduction: float) -> tuple[np.ndarray, np.ndarray]:
    schwa = np.asarray(VOWELS["@"], float)
    a, b = DIPHTHONGS.get(vowel, (vowel, vowel))
    va, vb = np.asarray(VOWELS[a], float), np.asarray(VOWELS[b], float)
    return va + reduction * (schwa - va), vb + reduction * (schwa - vb)


def _add_consonant(tl: _Timeline, name: str, scale: float, rng: np.random.Generator) -> None:
    ph = PHONES[name]
    dur = ph.dur / scale * rng.uniform(0.85, 1.15)
    if ph.kind == "stop":
        closure = dur * 0.62
        tl.add(closure, av=0.12 if ph.voiced else 0.0)
        tl.add(0.012, af=ph.amp, band=ph.band)
        if not ph.voiced:
            tl.add(dur * 0.3, ah=0.45 * ph.amp)
    elif ph.kind == "fric":
        tl.add(dur, av=0.35 if ph.voiced else 0.0, af=ph.amp, band=ph.band)
    elif ph.kind == "asp":
        tl.add(dur, ah=ph.amp)
    else:
        tl.add(dur, av=ph.amp, start=ph.locus)


def _build_timeline(sylls: list[Syllable], pros: dict[str, float], lead: float, trail: float,
                    rng: np.random.Generator) -> _Timeline:
    tl = _Timeline()
    scale = pros["tempo"]
    if lead > 0.35 and rng.random() < 0.5:  # an audible in-breath before speaking
        gap = rng.uniform(0.08, 0.18)
        breath = min(rng.uniform(0.2, 0.4), lead - gap - 0.05)
        tl.add(lead - breath - gap)
        tl.add(breath, ah=rng.uniform(0.05, 0.12), start=VOWELS["@"])
        tl.add(gap)
    else:
        tl.add(lead)
    red = pros["reduction"]
    n_syl = len(sylls)
    for k, syl in enumerate(sylls):
        for c in syl.onset:
            _add_consonant(tl, c, scale, rng)
        base = 0.165 if syl.stressed else 0.09
        if syl.phrase_end:
            base *= 1.45
        dur = base / scale * rng.uniform(0.85, 1.18)
        va, vb = _vowel_targets(syl.vowel, red if not syl.stressed else 0.3 * red)
        decl = 1.0 - 0.3 * k / max(n_syl - 1, 1)
        amp = (1.0 if syl.stressed else 0.62) * decl * rng.uniform(0.85, 1.1)
        i0, i1 = tl.add(dur, av=amp, start=va, end=vb)
        tl.nuclei.append((i0, i1, syl.stressed, syl.phrase_end))
        for c in syl.coda:
            _add_consonant(tl, c, scale, rng)
        if k < n_syl - 1 and syl.word_end:
            p = pros["pause"] * (3.0 if syl.phrase_end else 1.0)
            if rng.random() < p:
                tl.add(rng.uniform(0.12, 0.35) / scale)
    tl.add(trail)
    return tl


def _smooth(x: np.ndarray, seconds: float) -> np.ndarray:
    m = max(1, int(round(seconds * CONTROL_RATE)))
    if m <= 1:
        return x
    kernel = np.hanning(m + 2)[1:-1]
    kernel /= kernel.sum()
    pad = m // 2
    xp = np.pad(x, (pad, m - 1 - pad), mode="edge")
    return np.convolve(xp, kernel, mode="valid")


def _pitch_track(tl: _Timeline, voice: Voice, pros: dict[str, float],
                 rng: np.random.Generator) -> np.ndarray:
    n = tl.n
    t = np.arange(n) / CONTROL_RATE
    st = np.full(n, 12.0 * np.log2(voice.f0_hz) + pros["f0_st"])
    if not tl.nuclei:
        return 2.0 ** (st / 12.0)
    t0 = tl.nuclei[0][0] / CONTROL_RATE
    t1 = tl.nuclei[-1][1] / CONTROL_RATE
    rel = np.clip((t - t0) / max(t1 - t0, 1e-3), 0.0, 1.0)
    rng_ = pros["range"]
    st += 1.0 * rng_ - 3.0 * np.sqrt(rng_) * rel  # start high, decline
    n_acc = 0
    for i0, i1, stressed, _final in tl.nuclei:
        dur = (i1 - i0) / CONTROL_RATE
        centre = (i0 + 0.4 * (i1 - i0)) / CONTROL_RATE
        height = (2.5 if stressed else 0.6) * rng_ * rng.uniform(0.6, 1.25)
        if stressed:
            height *= max(0.4, 1.0 - 0.18 * n_acc)
            n_acc += 1
        st += height * np.exp(-0.5 * ((t - centre) / (0.45 * dur + 0.03)) ** 2)
    i0, i1 = tl.nuclei[-1][0], tl.nuclei[-1][1]
    ramp = np.clip((np.arange(n) - i0) / max(i1 - i0, 1), 0.0, 1.0)
    st += pros["final_st"] * ramp
    drift = _smooth(rng.normal(0.0, 1.0, n), 0.12)
    st += 0.6 * np.sqrt(rng_) * drift / max(drift.std(), 1e-9)
    if pros["tremor_st"] > 0:
        st += pros["tremor_st"] * np.sin(2 * np.pi * rng.uniform(5.0, 7.0) * t
                                         + rng.uniform(0, 2 * np.pi))
    return np.clip(2.0 ** (st / 12.0), 55.0, 650.0)


# --------------------------------------------------------------------------- DSP


def _frame_params(sr: int) -> tuple[int, int]:
    n_fft = int(2 ** np.ceil(np.log2(0.02 * sr)))
    return n_fft, n_fft // 2


def _window(n_fft: int) -> np.ndarray:
    """Square-root periodic Hann: analysis x synthesis sums to 1 at 50 % overlap."""
    return np.sqrt(np.hanning(n_fft + 1)[:-1]).astype(np.float32)


def _stft(x: np.ndarray, n_fft: int, hop: int) -> np.ndarray:
    xp = np.pad(x.astype(np.float32, copy=False), (n_fft, n_fft + hop))
    n_frames = 1 + (len(xp) - n_fft) // hop
    frames = np.lib.stride_tricks.sliding_window_view(xp, n_fft)[::hop][:n_frames]
    return np.fft.rfft(frames * _window(n_fft), axis=1)


def _istft(spec: np.ndarray, n_fft: int, hop: int, length: int) -> np.ndarray:
    frames = np.fft.irfft(spec, n=n_fft, axis=1) * _window(n_fft)
    n_frames = frames.shape[0]
    out = np.zeros((n_frames + 2) * hop + n_fft, dtype=np.float32)
    step = n_fft // hop
    for r in range(step):  # frames r, r+step, ... do not overlap: add them as one block
        block = frames[r::step].reshape(-1)
        out[r * hop: r * hop + block.size] += block
    return out[n_fft: n_fft + length]


def _resonators_sq(freqs: np.ndarray, formants: np.ndarray, bws: np.ndarray) -> np.ndarray:
    """Squared magnitude of a cascade of unity-DC-gain resonators.

    ``freqs`` (1, bins); ``formants`` and ``bws`` (frames, k).
    """
    freqs = freqs.astype(np.float32)
    inv_f = (1.0 / formants).astype(np.float32)
    q = (bws / formants).astype(np.float32)
    denom = np.ones((formants.shape[0], freqs.shape[1]), dtype=np.float32)
    for k in range(formants.shape[1]):
        r = freqs * inv_f[:, k: k + 1]
        r2 = r * r
        denom *= (1.0 - r2) ** 2 + r2 * (q[:, k: k + 1] ** 2)
    return 1.0 / denom


def _channel_gain(freqs: np.ndarray, voice: Voice, sr: int) -> np.ndarray:
    f = np.maximum(freqs, 1.0)
    hp = (f / voice.highpass_hz) ** 4
    gain_db = 10.0 * np.log10(hp / (1.0 + hp))
    if voice.lowpass_hz is not None and voice.lowpass_hz < 0.5 * sr:
        gain_db -= 10.0 * np.log10(1.0 + (f / voice.lowpass_hz) ** 8)
    for centre, g, width in voice.eq:
        gain_db = gain_db + g * np.exp(-0.5 * (np.log2(f / centre) / width) ** 2)
    return 10.0 ** (gain_db / 20.0)


def _rosenberg(frac: np.ndarray, oq: float) -> np.ndarray:
    """Rosenberg (1971) glottal flow over one period; ``frac`` in [0, 1)."""
    tp = 0.68 * oq
    tn = 0.32 * oq
    opening = 0.5 - 0.5 * np.cos(np.pi / tp * np.minimum(frac, tp))
    closing = np.cos(0.5 * np.pi / tn * np.clip(frac - tp, 0.0, tn))
    return np.where(frac < tp, opening, closing)


def synthesize(text: str, *, voice: Voice, emotion: str, intensity: float = 1.0,
               sample_rate: int, rng: np.random.Generator, language: str = "en",
               max_syllables: int | None = None) -> np.ndarray:
    """Synthesise one clip of ``text`` spoken by ``voice`` with ``emotion``.

    Parameters
    ----------
    text
        What is "said" (drives the syllable/vowel skeleton).
    voice
        The speaker (:func:`make_voice`).
    emotion
        A unified label with an entry in :data:`EMOTION_PROSODY`.
    intensity
        Strength of the portrayal (1.0 nominal).
    sample_rate
        Output rate in Hz.
    rng
        The clip's generator; the same state gives the same samples.
    language
        ``"en"`` or ``"de"``.
    max_syllables
        Cap on the number of syllables (keeps clip durations short).

    Returns
    -------
    numpy.ndarray
        float64 samples in [-1, 1], mono, silence-padded at both ends.
    """
    sr = int(sample_rate)
    pros = clip_prosody(voice, emotion, intensity, rng)
    sylls = text_to_syllables(text, language=language, max_syllables=max_syllables)
    rec = voice.recording
    lead = rng.uniform(*rec.lead)
    trail = rng.uniform(*rec.trail)
    tl = _build_timeline(sylls, pros, lead, trail, rng)
    tracks = tl.arrays()
    av = _smooth(tracks["av"], 0.012)
    ah = _smooth(tracks["ah"], 0.010)
    af = _smooth(tracks["af"], 0.006)
    fmt = tracks["fmt"]
    idx = np.arange(tl.n)
    for k in range(3):
        col = fmt[:, k]
        ok = ~np.isnan(col)
        col = np.interp(idx, idx[ok], col[ok]) if ok.any() else np.full(tl.n, VOWELS["@"][k])
        fmt[:, k] = _smooth(col, 0.035)
    f0c = _pitch_track(tl, voice, pros, rng)

    n = int(round(tl.n / CONTROL_RATE * sr))
    tc = idx / CONTROL_RATE
    # synthesise only around the activity; the silent ends get background noise only
    busy = np.flatnonzero((av + ah + af) > 1e-3)
    s0 = max(0, int((busy[0] / CONTROL_RATE - 0.03) * sr)) if busy.size else 0
    s1 = min(n, int((busy[-1] / CONTROL_RATE + 0.05) * sr)) if busy.size else n
    ts = np.arange(s0, s1) / sr
    m = ts.size
    f0 = np.interp(ts, tc, f0c)
    av_s = np.interp(ts, tc, av)
    ah_s = np.interp(ts, tc, ah)
    af_s = np.interp(ts, tc, af)

    # glottal source with per-period jitter and shimmer
    phase0 = np.cumsum(f0 / sr)
    jit = rng.standard_normal(int(phase0[-1]) + 2)
    f0j = f0 * np.clip(1.0 + pros["jitter"] * jit[phase0.astype(np.int64)], 0.5, 1.5)
    phase = np.cumsum(f0j / sr)
    period = phase.astype(np.int64)
    frac = phase - period
    flow = _rosenberg(frac, pros["oq"])
    excitation = np.diff(flow, prepend=0.0) * (sr / voice.f0_hz)
    shim = 1.0 + pros["shimmer"] * rng.standard_normal(int(period.max()) + 1)[period]
    open_gate = 0.35 + 0.65 * (frac < pros["oq"])
    breath = pros["breath"] * 3.0 * av_s * open_gate + 1.2 * ah_s
    source = excitation * av_s * shim + rng.standard_normal(m) * breath
    frication = rng.standard_normal(m) * af_s

    n_fft, hop = _frame_params(sr)
    spec_v = _stft(source, n_fft, hop)
    spec_f = _stft(frication, n_fft, hop)
    n_frames = spec_v.shape[0]
    centres = (s0 + np.arange(n_frames) * hop - n_fft / 2) / sr
    freqs = np.fft.rfftfreq(n_fft, 1.0 / sr)[None, :]

    scale = voice.formant_scale
    shift = pros["formant"]
    f123 = np.stack([np.interp(centres, tc, fmt[:, k]) for k in range(3)], axis=1)
    f123 = f123 * scale * np.array([1.0 + 1.5 * shift, 1.0 + shift, 1.0 + shift])
    f456 = np.array([3400.0, 4500.0, 5600.0]) * scale
    formants = np.concatenate([f123, np.broadcast_to(f456, (n_frames, 3))], axis=1)
    widen = 1.0 + 2.0 * pros["breath"]
    bws = np.concatenate([
        (45.0 + 0.045 * f123[:, :1]) * widen,
        60.0 + 0.04 * f123[:, 1:3],
        np.broadcast_to(np.array([220.0, 300.0, 450.0]), (n_frames, 3)),
    ], axis=1)
    tilt_db = -pros["tilt_db"] * np.log2(np.clip(freqs, 500.0, 5000.0) / 500.0)
    chan = _channel_gain(freqs, voice, sr)
    h_vt = np.sqrt(_resonators_sq(freqs, formants, bws)) * (10.0 ** (tilt_db / 20.0) * chan
                                                           ).astype(np.float32)

    fc = np.minimum(np.interp(centres, tc, tracks["fc"]) * (0.7 + 0.3 * scale), 0.8 * sr / 2)
    fbw = np.interp(centres, tc, tracks["fbw"])
    log_f = np.log2(np.maximum(freqs, 20.0)).astype(np.float32)
    z = (log_f - np.log2(fc)[:, None].astype(np.float32)) / fbw[:, None].astype(np.float32)
    h_fr = (np.exp(-0.5 * z * z) + 0.03) * chan.astype(np.float32)

    out_v = spec_v * h_vt
    out_f = spec_f * h_fr
    # Calibrate frication against the vowels: fricatives sit ~10-15 dB below.
    av_fr = np.interp(centres, tc, av) > 0.5
    af_fr = np.interp(centres, tc, af) > 0.5
    e_v = float(np.mean(np.abs(out_v[av_fr]) ** 2)) if av_fr.any() else 1.0
    e_f = float(np.mean(np.abs(out_f[af_fr]) ** 2)) if af_fr.any() else 1.0
    out_v += out_f * np.float32(0.28 * np.sqrt(e_v / max(e_f, 1e-20)))
    speech = _istft(out_v, n_fft, hop, m).astype(np.float64)

    # level: speech RMS over the voiced part, plus the emotion's energy offset
    active = av_s > 0.3
    ref = np.sqrt(np.mean(speech[active] ** 2)) if active.any() else np.sqrt(np.mean(speech**2))
    level_db = voice.level_db + pros["energy_db"]
    y = np.zeros(n)
    y[s0:s1] = speech * (10.0 ** (level_db / 20.0) / max(ref, 1e-12))

    # background noise (coloured) and optional mains hum
    bg = _coloured_noise(n, voice.noise_slope, sr, rng)
    y += bg * (10.0 ** (voice.noise_db / 20.0) / max(bg.std(), 1e-12))
    if voice.hum_db is not None:
        amp = 10.0 ** (voice.hum_db / 20.0) * np.sqrt(2.0)
        t = np.arange(n) / sr
        y += amp * (np.sin(2 * np.pi * voice.hum_hz * t)
                    + 0.4 * np.sin(6 * np.pi * voice.hum_hz * t))

    if np.max(np.abs(y)) > 0.9:  # soft-limit like an overdriven preamp rather than wrapping
        y = 0.9 * np.tanh(y / 0.9)
    return y


def _coloured_noise(n: int, slope: float, sr: int, rng: np.random.Generator) -> np.ndarray:
    """Noise whose spectrum falls roughly as ``1/f**slope`` (0 white, 1 pink).

    White noise plus two slower noises, linearly interpolated (which low-passes
    them), decimated by 8 and 64: a cheap staircase approximation that avoids
    FFTs of awkward lengths.
    """
    t = np.arange(n, dtype=np.float64)
    out = rng.standard_normal(n)
    for factor in (8, 64):
        m = n // factor + 2
        slow = rng.standard_normal(m) * factor ** ((slope - 1.0) / 2.0)
        out += np.interp(t / factor, np.arange(m), slow)
    return out - out.mean()


def to_pcm16(y: np.ndarray) -> np.ndarray:
    """Quantise float samples in [-1, 1] to int16 (deterministic rounding)."""
    return np.round(np.clip(y, -1.0, 1.0) * 32767.0).astype(np.int16)
