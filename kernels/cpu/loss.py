"""Numba CPU kernels for the loss family."""
__all__ = []
