"""float64 NumPy reference (forward and backward) for the activation family."""
__all__ = []
