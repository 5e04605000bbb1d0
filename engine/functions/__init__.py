"""torch.* functions beyond the tensor's own operators: math, reductions, products, shapes, randomness.

Kept import-free: engine/__init__.py imports the submodules once engine.tensor exists."""
