"""float64 NumPy reference (forward and backward) for the attention family."""
__all__ = []
