"""Data layer: validation, transaction summaries, built-in datasets, compression and simulators."""
