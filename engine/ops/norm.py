"""Engine ops of the norm family."""
__all__ = []
