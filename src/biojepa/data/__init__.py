"""Data layer: canonical schema, dataset registry, source adapters, preprocessing and splits."""

from biojepa.data.loaders import load_dataset

__all__ = ["load_dataset"]
