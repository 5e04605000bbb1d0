"""Engine ops of the linear family."""
__all__ = []
