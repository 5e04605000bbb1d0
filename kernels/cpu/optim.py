"""Numba CPU kernels for the optim family."""
__all__ = []
