"""Models: scikit-learn pipelines tuned with GridSearchCV, and a Keras LSTM."""

CLASSICAL_MODELS: tuple[str, ...] = ("svm", "knn", "random_forest", "decision_tree")
SEQUENCE_MODELS: tuple[str, ...] = ("lstm",)
MODELS: tuple[str, ...] = CLASSICAL_MODELS + SEQUENCE_MODELS
