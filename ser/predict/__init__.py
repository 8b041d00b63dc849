"""Classifying new recordings: inference, timelines, speaker profiles, speech extras."""
