"""float64 NumPy reference (forward and backward) for the optim family."""
__all__ = []
