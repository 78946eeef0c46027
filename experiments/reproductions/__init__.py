"""Reproductions of published results, one module each, run by ``experiments.reproduce``."""
