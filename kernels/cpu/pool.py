"""Numba CPU kernels for the pool family."""
__all__ = []
