"""Edits: the difference between a chunk's code and its rewrite, as minimal text edits."""

from .lines import apply, chunk_edits

__all__ = ["apply", "chunk_edits"]
