"""Numba CPU kernels for the activation family."""
__all__ = []
