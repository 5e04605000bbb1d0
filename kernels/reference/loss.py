"""float64 NumPy reference (forward and backward) for the loss family."""
__all__ = []
