"""Metrics on a test set and evaluating a trained model."""
