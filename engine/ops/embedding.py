"""Engine ops of the embedding family."""
__all__ = []
