"""float64 NumPy reference (forward and backward) for the embedding family."""
__all__ = []
