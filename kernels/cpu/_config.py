"""The settings every CPU kernel takes from here: Numba's fastmath flag sets, the parallel thresholds, and the
small-array rule.

fastmath: never "nnan" or "ninf" (numba#2919): LLVM would then assume there is no NaN or inf, and -inf masks,
NaN propagation and isnan checks would break without a sound. "reassoc" is what lets sum loops vectorize,
"contract" makes FMAs. FASTMATH is the set for new kernels. The narrower sets are the ones their kernels were
written and tested with: giving them "nsz" (and norm "afn") changes their results in the last bits (measured:
activations, pool, norm and rnn outputs move by up to ~2e-3 relative in float32 backward passes), so they
stay until someone re-validates those kernels. FASTMATH_CONTRACT is for code whose order of operations must
hold exactly (loss and log_softmax form (x - m) - log s, never x - (m + log s)).

error_model="numpy" on every kernel (tests/test_layout.py checks): Numba's default ("python") tests each
division for a zero divisor so that it can raise ZeroDivisionError, and that branch stops LLVM vectorizing the
loop around it (sigmoid's forward, whose loop divides once, ran 13x slower than PyTorch's; 12x faster without
the check). With "numpy" x / 0 gives inf or NaN, as in PyTorch; an integer // 0 gives 0, so sizes that divide
are checked before a kernel runs.

Parallel thresholds: an input under PARALLEL_MIN elements runs serially in the calling thread (waking the
thread pool costs tens of microseconds, milliseconds on a loaded machine: more than a small array's work).
Chunk sizes are fixed numbers of elements, never a function of the thread count, so results are the same
bits for any number of threads.

An elementwise op is written as a serial `@njit` loop `_op(*args, lo, hi)` plus a parallel driver
`_op_par(*args)` that runs it over CHUNK-sized pieces with `prange`; `run_chunked` picks one. (The drivers
are written out rather than generated: numba's cache keys on a function's name and line, and function-typed
arguments are not cached across processes.)
"""
FASTMATH = {"contract", "arcp", "reassoc", "afn", "nsz"}      # softmax, losses, attention, conv
FASTMATH_ELEMENTWISE = FASTMATH - {"nsz"}                      # activations, dropout, rnn, pool
FASTMATH_NORM = FASTMATH - {"nsz", "afn"}                      # batch norm, layer norm
FASTMATH_CONTRACT = {"contract"}                               # no reassociation at all

PARALLEL_MIN = 1 << 16      # elements: smaller inputs run serially in the calling thread
CHUNK = 1 << 14             # elements per prange iteration of the elementwise and optimizer drivers
ROW_CHUNK = 1 << 14         # elements (whole rows) per prange iteration of softmax and cross_entropy
SUM_CHUNK = 1 << 15         # mse_loss: elements per float64 partial sum (sets the summation order)


def run_chunked(serial, parallel, n, *args):
    """`serial(*args, 0, n)` in the calling thread for n < PARALLEL_MIN, else `parallel(*args)`."""
    if n < PARALLEL_MIN:
        serial(*args, 0, n)
    else:
        parallel(*args)
