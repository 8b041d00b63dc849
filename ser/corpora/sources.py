"""Where each real corpus is published and how to get it (``ser data list``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class CorpusInfo:
    """What is known about obtaining one corpus.

    Attributes
    ----------
    name
        Corpus name (a key of :data:`ser.corpora.PARSERS`).
    title
        Full name.
    expected_wavs
        Number of ``.wav`` clips of the complete corpus (as the archive below
        holds it, where there is one).
    licence
        Licence or terms of use.
    source
        Where the corpus is published.
    archive
        File name of the official archive, if there is one.
    url
        Stable public download URL, or None if it must be fetched by hand.
    sha256
        SHA-256 of that archive, only where it is actually known; None
        otherwise (the import then prints the hash so you can pin it).
    how_to_get
        What to do when there is no URL.
    verify_options
        Parser options used to verify an import (e.g. accept RAVDESS song).
    """

    name: str
    title: str
    expected_wavs: int
    licence: str
    source: str
    archive: str | None = None
    url: str | None = None
    sha256: str | None = None
    how_to_get: str = ""
    verify_options: dict[str, Any] = field(default_factory=dict)


#: Corpus name -> what is known about getting it.
CORPORA: dict[str, CorpusInfo] = {
    "tess": CorpusInfo(
        name="tess",
        title="Toronto Emotional Speech Set (TESS)",
        expected_wavs=2800,
        licence="CC BY-NC-ND 4.0",
        source="University of Toronto Dataverse, doi:10.5683/SP2/E8H2MF",
        how_to_get="download all files of https://doi.org/10.5683/SP2/E8H2MF as one zip, "
                   "then: ser data import tess <that zip>",
    ),
    "ravdess": CorpusInfo(
        name="ravdess",
        title="Ryerson Audio-Visual Database of Emotional Speech and Song (RAVDESS), "
              "audio-only speech",
        expected_wavs=1440,
        licence="CC BY-NC-SA 4.0",
        source="Zenodo record 1188976 (https://zenodo.org/records/1188976)",
        archive="Audio_Speech_Actors_01-24.zip",
        url="https://zenodo.org/records/1188976/files/Audio_Speech_Actors_01-24.zip",
        how_to_get="ser data download ravdess (about 200 MB)",
        verify_options={"include_song": True},
    ),
    "cremad": CorpusInfo(
        name="cremad",
        title="Crowd-sourced Emotional Multimodal Actors Dataset (CREMA-D)",
        expected_wavs=7442,
        licence="Open Database License (ODbL)",
        source="https://github.com/CheyneyComputerScience/CREMA-D (audio in AudioWAV/, Git LFS)",
        how_to_get="git lfs install && git clone "
                   "https://github.com/CheyneyComputerScience/CREMA-D, "
                   "then: ser data import cremad CREMA-D (keeps AudioWAV/ and "
                   "VideoDemographics.csv, skips the videos)",
    ),
    "savee": CorpusInfo(
        name="savee",
        title="Surrey Audio-Visual Expressed Emotion (SAVEE)",
        expected_wavs=480,
        licence="free for research after registration with the University of Surrey",
        source="University of Surrey, CVSSP (registration required)",
        how_to_get="register on the SAVEE web page of the University of Surrey, download "
                   "the audio (AudioData), then: ser data import savee <zip or folder>",
    ),
    "emodb": CorpusInfo(
        name="emodb",
        title="Berlin Database of Emotional Speech (EMO-DB)",
        expected_wavs=535,
        licence="see http://emodb.bilderbar.info",
        source="http://emodb.bilderbar.info",
        archive="download.zip",
        url="http://emodb.bilderbar.info/download/download.zip",
        how_to_get="ser data download emodb",
    ),
}
