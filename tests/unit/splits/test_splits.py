"""Split protocols: no speaker leaks under speaker/cross_corpus, reruns are identical."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from ser.errors import ConfigError
from ser.splits.protocols import cv_splitter, make_split, speaker_groups, validation_split


def fake_manifest() -> pd.DataFrame:
    rows = []
    spec = {"ravdess": ([f"{i:02d}" for i in range(1, 9)], ["neutral", "calm", "happy", "sad"]),
            "tess": (["OAF", "YAF"], ["neutral", "happy", "sad", "surprised"]),
            "savee": (["DC", "JE", "JK", "KL"], ["neutral", "happy", "sad", "surprised"])}
    for corpus, (speakers, emotions) in spec.items():
        for spk, emo, rep in itertools.product(speakers, emotions, range(3)):
            rows.append({"path": f"{corpus}/{spk}_{emo}_{rep}.wav", "corpus": corpus,
                         "speaker": spk, "emotion": emo})
    return pd.DataFrame(rows).sample(frac=1, random_state=0)  # order must not matter


@pytest.mark.parametrize("protocol", ["speaker", "cross_corpus"])
def test_no_speaker_on_both_sides(protocol):
    split = make_split(fake_manifest(), protocol, test_size=0.25, seed=1, test_corpus="ravdess")
    keys = speaker_groups(split)
    train = set(keys[split["split"] == "train"])
    test = set(keys[split["split"] == "test"])
    assert train and test
    assert not train & test


def test_speaker_split_holds_out_speakers_of_every_corpus():
    split = make_split(fake_manifest(), "speaker", test_size=0.25, seed=3)
    for corpus, rows in split.groupby("corpus"):
        sides = rows.groupby("speaker")["split"].nunique()
        assert (sides == 1).all(), f"{corpus}: a speaker is split across sides"
        assert set(rows["split"]) == {"train", "test"}, corpus
    tess = split[split["corpus"] == "tess"]
    assert tess.groupby("split")["speaker"].nunique().to_dict() == {"test": 1, "train": 1}


def test_random_split_mixes_speakers_and_stratifies():
    split = make_split(fake_manifest(), "random", test_size=0.25, seed=0)
    assert 0.2 < (split["split"] == "test").mean() < 0.3
    keys = speaker_groups(split)
    shared = set(keys[split["split"] == "train"]) & set(keys[split["split"] == "test"])
    assert shared, "a random split is expected to share speakers (that is its leak)"
    per_stratum = split.groupby(["corpus", "emotion"])["split"].apply(lambda s: (s == "test").sum())
    assert (per_stratum >= 1).all()


def test_cross_corpus_keeps_only_shared_emotions():
    split = make_split(fake_manifest(), "cross_corpus", test_size=0.25, seed=0,
                       test_corpus="ravdess")
    assert set(split.loc[split["split"] == "test", "corpus"]) == {"ravdess"}
    used = split[split["split"] != "unused"]
    assert set(used["emotion"]) == {"neutral", "happy", "sad"}  # calm/surprised not shared
    assert set(split.loc[split["split"] == "unused", "emotion"]) == {"calm", "surprised"}


@pytest.mark.parametrize("protocol", ["random", "speaker", "cross_corpus"])
def test_split_is_deterministic_and_order_free(protocol):
    m = fake_manifest()
    a = make_split(m, protocol, test_size=0.25, seed=5, test_corpus="savee")
    b = make_split(m.sample(frac=1, random_state=9), protocol, test_size=0.25, seed=5,
                   test_corpus="savee")
    pd.testing.assert_frame_equal(a, b)


def test_seed_changes_the_speaker_split():
    m = fake_manifest()
    tests = {tuple(sorted(set(make_split(m, "speaker", test_size=0.25, seed=s)
                               .query("split == 'test'")["speaker"]))) for s in range(6)}
    assert len(tests) > 1


def test_bad_protocol_and_missing_test_corpus_are_clear():
    with pytest.raises(ConfigError, match="unknown protocol"):
        make_split(fake_manifest(), "leave_nothing_out", test_size=0.2, seed=0)
    with pytest.raises(ConfigError, match="emodb"):
        make_split(fake_manifest(), "cross_corpus", test_size=0.2, seed=0, test_corpus="emodb")


def test_single_speaker_corpus_cannot_be_speaker_split():
    m = fake_manifest()
    m = m[~((m["corpus"] == "tess") & (m["speaker"] == "YAF"))]
    with pytest.raises(ConfigError, match="one speaker"):
        make_split(m, "speaker", test_size=0.25, seed=0)


@pytest.mark.parametrize("emotions", [["neutral", "calm", "calm"],
                                      ["sad", "sad", "happy", "happy"]])
def test_random_split_of_too_few_clips_is_one_line(emotions):
    # Once scikit-learn tracebacks: a lone clip in the pooled "rare" stratum; a test set
    # smaller than the number of classes.
    m = pd.DataFrame({"path": [f"c{i}.wav" for i in range(len(emotions))],
                      "corpus": "ravdess", "speaker": "01", "emotion": emotions})
    with pytest.raises(ConfigError, match="random protocol cannot draw") as info:
        make_split(m, "random", test_size=0.25, seed=0)
    assert "\n" not in str(info.value) and "add clips" in str(info.value)


def test_grouped_cv_folds_never_share_a_speaker():
    split = make_split(fake_manifest(), "speaker", test_size=0.25, seed=0)
    train = split[split["split"] == "train"].reset_index(drop=True)
    groups = speaker_groups(train).to_numpy()
    cv = cv_splitter("speaker", n_splits=3, seed=0, groups=groups)
    for fit_idx, val_idx in cv.split(np.zeros(len(train)), train["emotion"], groups):
        assert not set(groups[fit_idx]) & set(groups[val_idx])


def test_validation_split_respects_speakers():
    split = make_split(fake_manifest(), "speaker", test_size=0.25, seed=0)
    train = split[split["split"] == "train"].reset_index(drop=True)
    groups = speaker_groups(train).to_numpy()
    fit_idx, val_idx = validation_split(train["emotion"].to_numpy(), groups, "speaker",
                                        share=0.2, seed=0)
    assert len(val_idx) and not set(groups[fit_idx]) & set(groups[val_idx])
    assert len(fit_idx) + len(val_idx) == len(train)
