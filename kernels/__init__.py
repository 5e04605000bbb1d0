"""Kernels: `kernels.reference` (float64 NumPy oracle), `kernels.cpu` (Numba @njit), later `kernels.cuda`.

Every backend module exports the same names, `<op>_fwd` / `<op>_bwd`, so the module is the switch.
Backward kernels overwrite their outputs; only the engine accumulates into `.grad`.
"""
