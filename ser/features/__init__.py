"""MFCC features: the feature definition and the corpus extractor.

``ser.features.mfcc`` is the single source of the feature definition (used
for training and for prediction on new recordings); ``ser.features.extract``
writes a corpus' features to Parquet and reads them back.
"""

from ser.features.extract import (
    METADATA_KEY,
    ExtractionResult,
    extract_features,
    feature_columns,
    load_sequences,
    read_feature_params,
    resolve_workers,
)
from ser.features.mfcc import (
    SUMMARY_STATS,
    FeatureError,
    FeatureParams,
    analysis_kernels,
    check_feature_params,
    coefficient_names,
    feature_params_fingerprint,
    features_from_file,
    mfcc_sequence,
    mfcc_summary,
    prepare_signal,
    single_threaded_blas,
    summary_names,
)

__all__ = [
    "METADATA_KEY",
    "SUMMARY_STATS",
    "ExtractionResult",
    "FeatureError",
    "FeatureParams",
    "analysis_kernels",
    "check_feature_params",
    "coefficient_names",
    "extract_features",
    "feature_columns",
    "feature_params_fingerprint",
    "features_from_file",
    "load_sequences",
    "mfcc_sequence",
    "mfcc_summary",
    "prepare_signal",
    "read_feature_params",
    "resolve_workers",
    "single_threaded_blas",
    "summary_names",
]
