"""tunelab: a reproducible experiment pipeline for AI music generation."""

__version__ = "0.1.0"
