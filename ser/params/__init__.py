"""Parameters: loading and validating params.yaml, typed settings per section."""
