"""float64 NumPy reference (forward and backward) for the conv family."""
__all__ = []
