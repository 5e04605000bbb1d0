"""float64 NumPy reference (forward and backward) for the softmax family."""
__all__ = []
