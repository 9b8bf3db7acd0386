"""Exceptions raised for bad input. Each message says what was wrong and how to fix it."""

from __future__ import annotations


class BioJepaError(Exception):
    """Base class of every error biojepa raises on purpose."""


class DataError(BioJepaError, ValueError):
    """Input data does not meet the canonical schema or a processing precondition."""


class DownloadError(BioJepaError):
    """A dataset could not be downloaded, verified or extracted."""


class CheckpointError(BioJepaError):
    """A checkpoint is missing, truncated, corrupt or does not match its config."""


class SplitError(BioJepaError, ValueError):
    """A split cannot be built or does not fit the data it is applied to."""


class WorkerError(BioJepaError):
    """A worker process of a parallel run stopped without returning its result."""
