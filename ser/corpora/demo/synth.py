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
  (:data:`ser.corpora.demo.voices.EMOTION_PROSODY`). Each speaker has habits (a
  neutral offset) and an individual "style" for each emotion, and each clip varies at
  random, so a classifier must generalise across speakers rather than memorise them.
* **Recording.** Per-corpus level, silence at both ends, background noise,
  mains hum and a per-speaker microphone/channel colouring
  (:class:`ser.corpora.demo.voices.Recording`).

Everything is driven by a :class:`numpy.random.Generator`; the same seed
gives the same samples.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np

from ser.corpora.demo.syllables import DIPHTHONGS, PHONES, VOWELS, Syllable, text_to_syllables
from ser.corpora.demo.voices import Voice, clip_prosody

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
