"""Numba CPU kernels for the norm family."""
__all__ = []
