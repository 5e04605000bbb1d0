"""Numba CPU kernels for the embedding family."""
__all__ = []
