"""Engine ops of the attention family."""
__all__ = []
