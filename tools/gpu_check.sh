#!/usr/bin/env bash
# The GPU checks in one command (`make gpu-check OUT=<folder>`): the test suite's cuda half (`pytest -m cuda`:
# kernels against the references, the engine on "cuda", layers, optimizers, a few training steps, no host
# copies in a step), the GPU benchmark shapes, and the kernel tests' cuda half again through the PTX launch
# path, writing everything to OUT. Meant for a machine with an NVIDIA GPU, CuPy and numba-cuda; it uses the
# Python it is given (GPU_PY, default python3) as it is, installing nothing.
set -u -o pipefail
OUT=${1:?usage: tools/gpu_check.sh OUT_FOLDER}
PY=${GPU_PY:-python3}
mkdir -p "$OUT"
export PYTHONPATH="${PYTHONPATH:+$PYTHONPATH:}$PWD"
status=0
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>&1 || true
  "$PY" -c "import sys, numpy, numba; print(sys.version.split()[0], 'numpy', numpy.__version__, 'numba', numba.__version__)"
  "$PY" -c "import sys, engine.backend as b; ok, why = b.cuda_status(); print('engine cuda available:', ok, why); sys.exit(not ok)"
} 2>&1 | tee "$OUT/status.txt" || status=1
# 1. every test's cuda half (the items marked cuda) with Numba's own launch path (the default)
timeout 300 "$PY" -m pytest -q -p no:cacheprovider -m cuda --junitxml="$OUT/cuda-tests.xml" 2>&1 \
  | tee "$OUT/cuda-tests.txt" || status=1
# 2. the GPU shapes at full size and the per-op overhead cases, engine vs PyTorch and CuPy
timeout 150 "$PY" -m bench run --device cuda --gpu-set --no-progress --out "$OUT" 2>&1 | tee "$OUT/bench.txt" || status=1
# 3. the kernel tests' cuda half again through the PTX + CuPy RawModule launch path (opt-in until this passes
#    on hardware)
ENGINE_CUDA_LAUNCH=ptx timeout 200 "$PY" -m pytest -q -p no:cacheprovider -m cuda -k kernel \
  --junitxml="$OUT/cuda-tests-ptx.xml" 2>&1 | tee "$OUT/cuda-tests-ptx.txt" || status=1
# 4. data-parallel on NCCL: a world of one on this GPU (CuPy's communicator, the unique id, DDP and SyncBatchNorm)
timeout 180 "$PY" tests/distributed/gpu_nccl_check.py --out "$OUT" 2>&1 | tee "$OUT/nccl-check.txt" || status=1
echo "gpu-check: $([ $status = 0 ] && echo ok || echo FAILED); results in $OUT" | tee -a "$OUT/status.txt"
exit $status
