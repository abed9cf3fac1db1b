"""Objective metrics of generated music against real pieces: MusPy's absolute statistics,
mgeval's relative (intra-/inter-set) comparisons and a memorization check."""
