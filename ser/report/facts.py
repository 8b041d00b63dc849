"""Fixed facts the report quotes: published numbers, human rates, protocol wording.

Display names of corpora, models and protocols are their registries' (:func:`corpus_name`,
:func:`model_name`, :func:`protocol_name`).

These are figures from the literature, not measurements of this project; each names
its source inline. The seed accuracies are the seed project's README results table;
the human recognition rates are each corpus' own validation study: TESS, Dupuis &
Pichora-Fuller (2010), University of Toronto; RAVDESS, Livingstone & Russo (2018),
PLoS ONE 13(5): e0196391; CREMA-D, Cao et al. (2014), IEEE Trans. Affective
Computing; SAVEE, Haq & Jackson (2009/2010), University of Surrey; EMO-DB, Burkhardt
et al. (2005), Interspeech. What this project measured comes from benchmark results
files (``benchmarks/results/``), never from here.
"""

from __future__ import annotations

from ser.corpora import CORPUS_SPECS
from ser.models import MODEL_SPECS
from ser.splits.protocols import PROTOCOL_SPECS

#: What each protocol measures (``{test}`` is the cross-corpus test corpus).
PROTOCOL_TEXT: dict[str, str] = {
    "random": ("clips of the pooled corpora are shuffled into train and test regardless of "
               "who speaks them; the same speakers, and repetitions of the same sentence, "
               "are on both sides (what the seed project and much older work report)"),
    "speaker": ("speaker-independent: in every corpus a share of the speakers is held out, "
                "so no test voice is heard in training"),
    "speaker_cv": ("speaker-independent k-fold: the speakers are split into folds and every "
                   "fold is held out once (leave-one-speaker-out when k = speakers); pooled "
                   "UAR over all held-out clips and the mean ± sd of per-speaker UARs"),
    "cross_corpus": ("train on the other corpora, test on {test}: new speakers, sentences "
                     "and recording conditions; classes one side lacks are dropped"),
}

#: The seed project's published table: accuracy on a pooled *random* split.
SEED_ACCURACY: dict[str, float] = {
    "lstm_seed": 0.96,  # the seed's LSTM, which lstm_seed re-implements
    "svm": 0.85,
    "knn": 0.78,
    "random_forest": 0.85,
    "decision_tree": 0.75,
}

#: Human recognition rates from each corpus' validation study: (rate, conditions and
#: source, as the report prints them).
HUMAN_RECOGNITION: dict[str, tuple[float, str]] = {
    "tess": (0.82, "original validation, Dupuis & Pichora-Fuller 2010"),
    "ravdess": (0.62, "audio-only speech, Livingstone & Russo 2018"),
    "cremad": (0.41, "audio-only, Cao et al. 2014"),
    "savee": (0.665, "audio-only, Haq & Jackson 2009"),
    "emodb": (0.84, "listening test, Burkhardt et al. 2005"),
}

def corpus_name(name: str) -> str:
    """Display name of a corpus (its module's ``DISPLAY``; unknown names as they are)."""
    spec = CORPUS_SPECS.get(name)
    return spec.display if spec is not None else name


def model_name(name: str) -> str:
    """Display name of a model (:attr:`ser.models.ModelSpec.display`)."""
    spec = MODEL_SPECS.get(name)
    return spec.display if spec is not None else name


def protocol_name(name: str) -> str:
    """Display name of a protocol (:attr:`ser.splits.protocols.ProtocolSpec.display`)."""
    spec = PROTOCOL_SPECS.get(name)
    return spec.display if spec is not None else name
