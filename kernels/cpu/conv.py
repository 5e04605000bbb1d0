"""Numba CPU kernels for the conv family."""
__all__ = []
