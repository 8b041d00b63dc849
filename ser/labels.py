"""The unified emotion label set shared by every corpus."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from ser.errors import ConfigError

#: Unified labels in a fixed order (used for confusion matrices and reports).
EMOTIONS: tuple[str, ...] = (
    "neutral",
    "calm",
    "happy",
    "sad",
    "angry",
    "fearful",
    "disgust",
    "surprised",
    "boredom",
)

def sort_labels(labels) -> list[str]:
    """Return ``labels`` in the canonical :data:`EMOTIONS` order.

    Labels not in :data:`EMOTIONS` (a user's own corpus) follow, sorted.

    Parameters
    ----------
    labels : iterable of str
        Unified labels (duplicates are kept once).
    """
    known = [e for e in EMOTIONS if e in set(labels)]
    extra = sorted(set(labels) - set(EMOTIONS))
    return known + extra


# --------------------------------------------------------------------------------------------
# Users' own label names
# --------------------------------------------------------------------------------------------

#: Common spellings of the unified labels (lower-case, words joined by ``_``) -> unified label.
LABEL_SYNONYMS: dict[str, str] = {
    "neu": "neutral", "neutrality": "neutral",
    "calmness": "calm",
    "happiness": "happy", "hap": "happy", "joy": "happy", "joyful": "happy",
    "sadness": "sad",
    "anger": "angry", "ang": "angry", "mad": "angry",
    "fear": "fearful", "fea": "fearful", "afraid": "fearful", "scared": "fearful",
    "disgusted": "disgust", "dis": "disgust",
    "surprise": "surprised", "ps": "surprised", "pleasant_surprise": "surprised",
    "pleasant_surprised": "surprised",
    "bored": "boredom",
}


def normalise_label(label: str) -> str:
    """Return the unified spelling of a user's emotion label.

    Lower-cases, trims, joins words with ``_`` and maps common synonyms
    (:data:`LABEL_SYNONYMS`: ``Anger`` -> ``angry``, ``happiness`` -> ``happy``,
    ``fear`` -> ``fearful``, ``Pleasant surprise`` -> ``surprised``, ...). A
    label that is not a known emotion is kept as the user wrote it (in its
    normalised spelling), so a corpus may bring its own classes.

    Parameters
    ----------
    label : str
        The label as the user's corpus spells it.

    Raises
    ------
    ValueError
        If ``label`` is empty after trimming.
    """
    text = "_".join(str(label).strip().lower().replace("-", " ").split())
    if not text:
        raise ValueError("empty emotion label")
    return LABEL_SYNONYMS.get(text, text)


# --------------------------------------------------------------------------------------------
# Choosing the classes to model: keep / merge / drop
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LabelMap:
    """Which emotions a run models: merge some labels, drop some, keep a subset.

    Applied in that order: ``merge`` renames (``calm`` -> ``neutral``), then
    clips whose label is in ``drop`` are left out, then, if ``keep`` is given,
    only clips with one of those labels stay. Every name is normalised with
    :func:`normalise_label`.

    Attributes
    ----------
    keep
        The class set to model, or ``None`` for every label that remains.
    merge
        ``source -> target`` renames; a target must not itself be merged.
    drop
        Labels to leave out.

    Examples
    --------
    The 4-class setting common in the literature (angry, happy, neutral, sad,
    with RAVDESS' calm counted as neutral):

    >>> m = LABEL_PRESETS["four_class"]
    >>> labels, mask = m.apply(["calm", "angry", "fearful", "happy"])
    >>> labels.tolist(), mask.tolist()
    (['neutral', 'angry', 'happy'], [True, True, False, True])
    """

    keep: tuple[str, ...] | None = None
    merge: tuple[tuple[str, str], ...] = ()
    drop: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        norm = normalise_label
        keep = None if self.keep is None else tuple(dict.fromkeys(norm(k) for k in self.keep))
        merge = tuple((a, b) for a, b in ((norm(a), norm(b)) for a, b in dict(self.merge).items())
                      if a != b)
        drop = tuple(dict.fromkeys(norm(d) for d in self.drop))
        object.__setattr__(self, "keep", keep)
        object.__setattr__(self, "merge", merge)
        object.__setattr__(self, "drop", drop)
        sources = {a for a, _ in merge}
        chained = sorted(sources & {b for _, b in merge})
        if chained:
            raise ConfigError(f"labels.merge: {', '.join(chained)} is both merged into another "
                              "label and a merge target; merge straight into the final label")
        if keep is not None:
            if len(keep) < 2:
                raise ConfigError(f"labels.keep lists {len(keep)} emotion(s); a classifier "
                                  "needs at least two (or leave it out to keep every label)")
            both = sorted(set(keep) & set(drop))
            if both:
                raise ConfigError(f"labels: {', '.join(both)} is in both keep and drop")
            lost = sorted(b for a, b in merge if b not in keep)
            if lost:
                raise ConfigError(f"labels.merge targets {', '.join(lost)} are not in "
                                  "labels.keep, so the merged clips would be dropped")

    @classmethod
    def from_mapping(cls, section: Mapping[str, Any] | None) -> LabelMap:
        """Build from a params ``labels:`` section (``preset``, ``keep``, ``merge``, ``drop``).

        A ``preset`` (:data:`LABEL_PRESETS`) gives the defaults that the other
        keys then replace (a key left out or ``null`` keeps the preset's value).
        ``None`` or ``{}`` keeps every label unchanged.

        Parameters
        ----------
        section : Mapping or None
            The ``labels:`` section of params.yaml.
        """
        section = dict(section or {})
        unknown = sorted(set(section) - {"preset", "keep", "merge", "drop"})
        if unknown:
            raise ConfigError(f"labels: unknown key(s) {', '.join(unknown)}; "
                              "use preset, keep, merge, drop")
        base = cls()
        if section.get("preset") is not None:
            name = section["preset"]
            if name not in LABEL_PRESETS:
                raise ConfigError(f"labels.preset {name!r} is unknown; choose one of "
                                  f"{', '.join(LABEL_PRESETS)}")
            base = LABEL_PRESETS[name]
        # A key left out or null takes the preset's value.
        keep = base.keep if section.get("keep") is None else section["keep"]
        merge = dict(base.merge) if section.get("merge") is None else section["merge"]
        drop = base.drop if section.get("drop") is None else section["drop"]
        if not isinstance(merge, Mapping):
            raise ConfigError("labels.merge must map a label to the label it becomes, "
                              "e.g. {calm: neutral}")
        return cls(keep=None if keep is None else tuple(keep), merge=tuple(merge.items()),
                   drop=tuple(drop or ()))

    @property
    def is_identity(self) -> bool:
        """True if the map changes nothing."""
        return self.keep is None and not self.merge and not self.drop

    def apply(self, emotions: Iterable[str]) -> tuple[np.ndarray, np.ndarray]:
        """Map a column of labels.

        Parameters
        ----------
        emotions
            One label per clip (already unified, e.g. a manifest's ``emotion``).

        Returns
        -------
        labels : np.ndarray of str
            The new label of every clip that stays (``mask`` true), in order.
        mask : np.ndarray of bool
            Which input clips stay.
        """
        merge = dict(self.merge)
        mapped = np.array([merge.get(e, e) for e in emotions], dtype=object)
        mask = ~np.isin(mapped, list(self.drop)) if self.drop else np.ones(len(mapped), bool)
        if self.keep is not None:
            mask &= np.isin(mapped, list(self.keep))
        return mapped[mask].astype(str), mask

    def classes(self, emotions: Iterable[str]) -> list[str]:
        """The class set a run on ``emotions`` models, in canonical order.

        Parameters
        ----------
        emotions : iterable of str
            The clips' original emotions.
        """
        labels, _ = self.apply(emotions)
        return sort_labels(set(labels.tolist()))

    def dropped_counts(self, emotions: Iterable[str]) -> dict[str, int]:
        """Original label -> number of clips the map leaves out (for reports).

        Parameters
        ----------
        emotions : iterable of str
            The clips' original emotions.
        """
        emotions = list(emotions)
        _, mask = self.apply(emotions)
        return dict(Counter(e for e, kept in zip(emotions, mask, strict=True) if not kept))

    def describe(self) -> str:
        """One line for reports, e.g. ``angry, happy, neutral, sad (calm -> neutral)``."""
        parts = []
        parts.append("all labels" if self.keep is None else ", ".join(sort_labels(self.keep)))
        if self.merge:
            parts.append("merged " + ", ".join(f"{a} -> {b}" for a, b in self.merge))
        if self.drop:
            parts.append("dropped " + ", ".join(self.drop))
        return "; ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form (for model cards and metrics)."""
        return {"keep": None if self.keep is None else list(self.keep),
                "merge": dict(self.merge), "drop": list(self.drop)}


#: Named class sets. ``four_class``: angry / happy / neutral / sad, calm counted as neutral
#: (the setting of most 4-class results on IEMOCAP-style benchmarks and RAVDESS subsets).
LABEL_PRESETS: dict[str, LabelMap] = {
    "four_class": LabelMap(keep=("angry", "happy", "neutral", "sad"),
                           merge=(("calm", "neutral"),)),
}


def apply_label_map(
    emotions: Iterable[str],
    *,
    keep: Iterable[str] | None = None,
    merge: Mapping[str, str] | None = None,
    drop: Iterable[str] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Functional form of :meth:`LabelMap.apply`: ``(new labels of kept clips, mask)``.

    Parameters
    ----------
    emotions : iterable of str
        Every clip's unified emotion.
    keep : iterable of str, optional
        The classes to keep (``None``: all not dropped).
    merge : Mapping, optional
        Label -> the label it is merged into.
    drop : iterable of str, optional
        Classes left out.

    Examples
    --------
    >>> labels, mask = apply_label_map(["calm", "sad", "disgust"], merge={"calm": "neutral"},
    ...                                drop=["disgust"])
    >>> labels.tolist(), mask.tolist()
    (['neutral', 'sad'], [True, True, False])
    """
    label_map = LabelMap(keep=None if keep is None else tuple(keep),
                         merge=tuple((merge or {}).items()), drop=tuple(drop or ()))
    return label_map.apply(emotions)
