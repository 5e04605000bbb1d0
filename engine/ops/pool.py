"""Engine ops of the pool family."""
__all__ = []
