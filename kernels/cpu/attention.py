"""Numba CPU kernels for the attention family."""
__all__ = []
