"""Label normalisation, merge/drop/keep maps and the 4-class preset."""

from __future__ import annotations

import pytest

from ser.errors import ConfigError
from ser.labels import (
    LABEL_PRESETS,
    LabelMap,
    apply_label_map,
    normalise_label,
    sort_labels,
)

RAVDESS_LIKE = ["neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised"]


@pytest.mark.parametrize(("raw", "expected"), [
    ("Anger", "angry"), ("  HAPPINESS ", "happy"), ("fear", "fearful"), ("Sadness", "sad"),
    ("surprise", "surprised"), ("Pleasant surprise", "surprised"), ("pleasant-surprise",
                                                                     "surprised"),
    ("neutral", "neutral"), ("Bored", "boredom"), ("Frustrated", "frustrated"),
    ("very  excited", "very_excited"),
])
def test_normalise_label(raw, expected):
    assert normalise_label(raw) == expected


def test_normalise_label_empty():
    with pytest.raises(ValueError, match="empty"):
        normalise_label("  ")


def test_user_labels_sort_after_unified():
    assert sort_labels(["frustrated", "sad", "angry"]) == ["sad", "angry", "frustrated"]


def test_four_class_preset_merges_calm_and_drops_the_rest():
    labels, mask = LABEL_PRESETS["four_class"].apply(RAVDESS_LIKE)
    assert mask.tolist() == [True, True, True, True, True, False, False, False]
    assert labels.tolist() == ["neutral", "neutral", "happy", "sad", "angry"]
    assert LABEL_PRESETS["four_class"].classes(RAVDESS_LIKE) == ["neutral", "happy", "sad",
                                                                  "angry"]
    assert LABEL_PRESETS["four_class"].dropped_counts(RAVDESS_LIKE + ["fearful"]) == {
        "fearful": 2, "disgust": 1, "surprised": 1}


def test_merge_then_drop_then_keep_order():
    labels, mask = apply_label_map(["calm", "neutral", "disgust", "boredom", "sad"],
                                   merge={"calm": "neutral", "boredom": "neutral"},
                                   drop=["disgust"])
    assert labels.tolist() == ["neutral", "neutral", "neutral", "sad"]
    assert mask.tolist() == [True, True, False, True, True]
    # Dropping the merge target drops the merged clips too (merge comes first).
    labels, mask = apply_label_map(["calm", "sad"], merge={"calm": "neutral"}, drop=["neutral"])
    assert labels.tolist() == ["sad"] and mask.tolist() == [False, True]


def test_identity_and_names_normalised():
    assert LabelMap().is_identity
    labels, mask = LabelMap().apply(["sad", "x"])
    assert labels.tolist() == ["sad", "x"] and mask.all()
    m = LabelMap(keep=("Anger", "Happiness"), merge=(("Excited", "happy"), ("Joy", "happy")))
    assert m.keep == ("angry", "happy") and m.merge == (("excited", "happy"),)
    assert m.apply(["angry", "excited", "sad"])[0].tolist() == ["angry", "happy"]


def test_from_mapping_and_describe():
    m = LabelMap.from_mapping({"preset": "four_class", "drop": ["sad"], "keep":
                               ["angry", "happy", "neutral"]})
    assert m.keep == ("angry", "happy", "neutral") and m.drop == ("sad",)
    assert dict(m.merge) == {"calm": "neutral"}
    assert m.describe() == "neutral, happy, angry; merged calm -> neutral; dropped sad"
    assert m.to_dict() == {"keep": ["angry", "happy", "neutral"], "merge": {"calm": "neutral"},
                           "drop": ["sad"]}
    assert LabelMap.from_mapping(None).is_identity


@pytest.mark.parametrize(("section", "message"), [
    ({"preset": "three"}, "preset 'three' is unknown"),
    ({"kep": ["sad"]}, "unknown key"),
    ({"keep": []}, "at least two"),
    ({"keep": ["sad"]}, "at least two"),
    ({"keep": ["sad", "angry"], "drop": ["sad"]}, "both keep and drop"),
    ({"merge": {"calm": "neutral", "neutral": "sad"}}, "merge straight into the final"),
    ({"keep": ["sad", "angry"], "merge": {"calm": "neutral"}}, "not in labels.keep"),
    ({"merge": ["calm"]}, "must map a label"),
])
def test_bad_sections(section, message):
    with pytest.raises(ConfigError, match=message):
        LabelMap.from_mapping(section)


def test_null_keys_take_the_preset():
    m = LabelMap.from_mapping({"preset": "four_class", "keep": None, "merge": None,
                               "drop": None})
    assert m == LABEL_PRESETS["four_class"]


def test_split_marks_left_out_clips_unused_with_the_reason():
    import pandas as pd

    from ser.splits.protocols import split_with_labels

    emotions = ["neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised"]
    manifest = pd.DataFrame([
        {"path": f"{spk}/{e}.wav", "corpus": "ravdess", "speaker": spk, "emotion": e}
        for spk in ("01", "02", "03", "04") for e in emotions])
    label_map = LabelMap.from_mapping({"merge": {"calm": "neutral"}, "drop": ["disgust"],
                                       "keep": ["neutral", "happy", "sad", "angry",
                                                "surprised"]})
    split = split_with_labels(manifest, "speaker", label_map=label_map, test_size=0.25, seed=0)
    assert len(split) == len(manifest)
    used = split[split["split"] != "unused"]
    assert set(used["emotion"]) == {"neutral", "happy", "sad", "angry", "surprised"}
    assert (used["emotion"] == "neutral").sum() == 8          # 4 neutral + 4 calm
    assert (used["note"] == "").all()
    unused = split[split["split"] == "unused"].set_index("emotion")["note"]
    assert set(unused.index) == {"fearful", "disgust"} and len(unused) == 8
    assert unused["disgust"].eq("labels: disgust dropped").all()
    assert unused["fearful"].str.startswith("labels: fearful not in keep").all()
    with pytest.raises(ConfigError, match="leave one emotion"):
        split_with_labels(manifest, "speaker", label_map=LabelMap(drop=tuple(emotions[1:])),
                          test_size=0.25, seed=0)
