"""Which module is `cupy`: CuPy itself, or under Numba's CUDA simulator (`NUMBA_ENABLE_CUDASIM=1`, no GPU)
its stand-in kernels/_simcupy.py, which behaves as CuPy does wherever the engine could tell. Everything that
needs CuPy (the engine's device arrays, the CUDA kernels' wrappers, the launcher) gets it from here, so the
code the simulator runs is the code a GPU runs."""
_MODULE = None


def cupy():
    global _MODULE
    if _MODULE is None:
        from numba import config
        if config.ENABLE_CUDASIM:
            from kernels import _simcupy as module
        else:
            import cupy as module
        _MODULE = module
    return _MODULE
