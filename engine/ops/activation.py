"""Engine ops of the activation family."""
__all__ = []
