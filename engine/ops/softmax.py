"""Engine ops of the softmax family."""
__all__ = []
