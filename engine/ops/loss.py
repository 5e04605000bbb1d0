"""Engine ops of the loss family."""
__all__ = []
