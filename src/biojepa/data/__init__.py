"""Data layer: canonical schema, dataset registry, source adapters, preprocessing and splits."""
