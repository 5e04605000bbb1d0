"""float64 NumPy reference (forward and backward) for the norm family."""
__all__ = []
