"""The demo synthesiser's crude letter-to-sound reading: text -> syllables with vowel
and consonant targets, so the same sentence has the same vowels for every speaker
(see :mod:`ser.corpora.demo.synth`)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

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
