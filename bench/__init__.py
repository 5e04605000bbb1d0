"""Kernel verification and benchmarks: `python -m bench` (bench/__main__.py), or `pytest bench/ --benchmark-only`.

  core.py       the registries (VerifyOp: a kernel pair vs the reference; Case: an op at a standard shape),
                backends, the interleaved timer, thread settings
  verify.py     every backend's kernels against kernels.reference, forward and backward, fixed + random configs
  runner.py     the benchmark: engine vs NumPy reference vs PyTorch (vs CuPy on a GPU), per pass
  machine.py    machine description, peak GEMM FLOP/s and copy bandwidth, the thread-interference probe
  report.py     terminal tables, JSON, PNG
  activation.py embedding.py linear.py optim.py conv.py pool.py norm.py softmax.py attention.py rnn.py
                one op family each: its checks and its cases
  models.py     end-to-end training steps (LeNet, a small ResNet, a causal transformer encoder block, a GRU
                character model), timed in the op suite's process
  steps.py      the same steps as a user runs them: each library alone in a fresh process (python -m bench steps)
  test_benchmarks.py   the same CPU cases under pytest-benchmark (engine vs PyTorch per op, pass and shape);
  conftest.py          its options (--bench-quick, --bench-numpy, ...), default columns and closing summary

A new backend `kernels.cuda` (same names as kernels.cpu) is picked up by verify when it imports and a device
(or, with --cuda-sim, the simulator) is there. Importing this package imports nothing heavy: the CLI sets
the thread and Numba environment before numpy, numba and torch load. A development tool run from a checkout:
it is not part of the installed package, and writes its results under the current folder.
"""
