"""Numba CPU kernels for the softmax family."""
__all__ = []
