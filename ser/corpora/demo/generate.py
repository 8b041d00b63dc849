"""Write a synthetic corpus to disk in the corpus' real layout, atomically."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import soundfile as sf

from ser.corpora.demo.layouts import CORPORA, LAYOUTS, PRESETS, Clip, CorpusLayout
from ser.corpora.demo.synth import derive_rng, synthesize, to_pcm16
from ser.corpora.demo.voices import make_voice
from ser.errors import ConfigError
from ser.outputs import atomic_path

#: Written into every generated corpus root: says the audio is synthetic. Model cards
#: (:func:`ser.models.training.base_card`) look for it above the training clips.
SYNTHETIC_MARKER = "SYNTHETIC_DEMO_CORPUS.txt"


def _check(corpus: str, preset: str) -> CorpusLayout:
    if corpus not in LAYOUTS:
        raise ConfigError(f"unknown demo corpus {corpus!r}; choose one of {', '.join(CORPORA)}")
    if preset not in PRESETS:
        raise ConfigError(f"unknown demo preset {preset!r}; choose one of {', '.join(PRESETS)}")
    return LAYOUTS[corpus]


def plan_corpus(corpus: str, *, preset: str = "demo") -> list[Clip]:
    """List the clips that :func:`generate_corpus` writes (no audio is made).

    Parameters
    ----------
    corpus
        One of :data:`ser.corpora.demo.CORPORA`.
    preset
        One of :data:`ser.corpora.demo.PRESETS`.

    Returns
    -------
    list of Clip
        In writing order; the list does not depend on the seed.

    Raises
    ------
    ConfigError
        For an unknown corpus or preset.
    """
    return _check(corpus, preset).plan(preset)


def render_clip(corpus: str, clip: Clip, *, seed: int = 0):
    """Synthesise one clip of ``corpus`` as int16 samples.

    The speaker's voice depends on ``(seed, corpus, speaker)`` only and the
    clip's variation on ``(seed, corpus, relpath)``, so a clip sounds the same
    whichever preset or order it is rendered in.

    Returns
    -------
    numpy.ndarray
        int16 samples at the corpus' sample rate.
    """
    layout = _check(corpus, "demo")
    spk = clip.speaker
    voice = make_voice(spk.sex, spk.age, derive_rng(seed, corpus, "speaker", spk.id),
                       layout.recording)
    rng = derive_rng(seed, corpus, "clip", clip.relpath)
    y = synthesize(clip.text, voice=voice, emotion=clip.emotion, intensity=clip.intensity,
                   sample_rate=layout.sample_rate, rng=rng, language=layout.language,
                   max_syllables=layout.max_syllables)
    return to_pcm16(y)


def _write(args: tuple[str, Clip, int, str]) -> str:
    corpus, clip, seed, root = args
    path = Path(root) / clip.relpath
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), render_clip(corpus, clip, seed=seed), LAYOUTS[corpus].sample_rate,
             subtype="PCM_16", format="WAV")
    return clip.relpath


def generate_corpus(corpus: str, out_dir: str | Path, *, preset: str = "demo", seed: int = 0,
                    workers: int = 1, progress: Callable[[int], object] | None = None) -> int:
    """Write a synthetic ``corpus`` into ``out_dir`` in its real layout.

    The folder is built next to ``out_dir`` and renamed onto it only when
    complete (:func:`ser.outputs.atomic_path`), replacing any previous content, so
    an interrupted run never leaves a finished-looking corpus.

    Parameters
    ----------
    corpus
        One of :data:`ser.corpora.demo.CORPORA` (``tess``, ``ravdess``, ``cremad``,
        ``savee``, ``emodb``).
    out_dir
        The corpus root to create (e.g. ``data/demo/ravdess``).
    preset
        ``tiny`` (tests), ``demo`` (a few hundred clips) or ``full`` (the
        real corpus sizes), see :data:`ser.corpora.demo.PRESETS`.
    seed
        Same seed, byte-identical files. Each corpus derives its own streams
        from it, so corpora never share voices.
    workers
        Processes to synthesise with (0 = all cores). The output does not
        depend on it.
    progress
        Called with ``1`` after each clip is written (e.g. ``tqdm.update``).

    Returns
    -------
    int
        Number of audio files written.

    Raises
    ------
    ConfigError
        For an unknown corpus or preset, or a negative ``workers``.
    """
    layout = _check(corpus, preset)
    if workers < 0:
        raise ConfigError(f"workers must be >= 0 (0 = all cores), got {workers}")
    clips = layout.plan(preset)
    from ser.features.extract import resolve_workers

    n_workers = min(resolve_workers(workers), max(1, len(clips)))  # cores, clips at most
    with atomic_path(out_dir) as tmp:
        tmp.mkdir(parents=True)
        (tmp / SYNTHETIC_MARKER).write_text(
            f"Synthetic {corpus} demo corpus (preset {preset}, seed {seed}) written by "
            "scripts/generate_demo.py; not real speech.\n")
        jobs = [(corpus, clip, int(seed), str(tmp)) for clip in clips]
        if n_workers <= 1 or len(jobs) < 8:
            for job in jobs:
                _write(job)
                if progress is not None:
                    progress(1)
        else:
            with ProcessPoolExecutor(max_workers=n_workers) as pool:
                for _ in pool.map(_write, jobs, chunksize=4):
                    if progress is not None:
                        progress(1)
        for relpath, text in layout.extra_files(clips).items():
            (tmp / relpath).write_text(text, encoding="utf-8")
    return len(clips)
