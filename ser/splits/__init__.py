"""Train/test split protocols and the protocol data (a split joined with a feature set)."""
