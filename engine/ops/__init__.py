"""Each module pairs ops' forward with a hand-written backward (engine.autograd.Function) and checks arguments."""
