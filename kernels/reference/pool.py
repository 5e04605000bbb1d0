"""float64 NumPy reference (forward and backward) for the pool family."""
__all__ = []
