"""Engine ops of the conv family."""
__all__ = []
