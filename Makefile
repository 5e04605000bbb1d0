# Set-up and the two main commands. `make test` and `make bench` create .venv on first use.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
# A fresh kernel cache per run: cache=True does not notice changes in helpers imported from other files.
# (Outside `make test` the kernels cache under ~/.cache/numba-engine/kernels-<hash of kernels/**/*.py>.)
TEST_CACHE := $(CURDIR)/.numba_cache/test
# pytest-benchmark: where `make bench-save` keeps runs, and the slowdown that fails `make bench-compare`
# (the minimum of each benchmark's rounds, the steadiest figure on a shared machine)
BENCH_STORE := .benchmarks
BENCH_FAIL  ?= min:25%
BENCH_ENV   := env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE
PYBENCH     := $(BENCH_ENV) $(PY) -m pytest bench/ --benchmark-only --benchmark-storage=$(BENCH_STORE)

.PHONY: venv test test-fast bench bench-save bench-compare verify gpu-check clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip 'setuptools>=77'
	$(PY) -m pip install -q -e '.[dev]'
	# PyTorch is an optional peer for benchmarks only; a local CPU build is taken when present.
	-$(PY) -m pip install -q 'torch==2.13.0' 2>/dev/null || echo "torch not installed: benchmarks run without it"
	touch $(STAMP)

test: venv
	rm -rf $(TEST_CACHE)
	NUMBA_CACHE_DIR=$(TEST_CACHE) $(PY) -m pytest -q
	# the same tests' cuda half (the items marked cuda) under Numba's simulator: a separate process, because the
	# switch must precede numba's import
	NUMBA_ENABLE_CUDASIM=1 NUMBA_CACHE_DIR=$(TEST_CACHE) ENGINE_CUDA_RECORD=$(TEST_CACHE)/cuda-launches.json \
	  $(PY) -m pytest -q -m cuda
	# every kernel launch the simulator ran, compiled to PTX for sm_90 by Numba's real CUDA compiler and
	# assembled by ptxas where it is installed (no GPU needed)
	$(PY) -m kernels.ptxcheck $(TEST_CACHE)/cuda-launches.json --ptxas

bench: venv
	$(BENCH_ENV) $(PY) -m bench
	$(BENCH_ENV) $(PY) -m bench distributed

# Regression tracking: save a run of the pytest-benchmark cases, later compare the working tree against the
# last saved run (fails when a benchmark's minimum is BENCH_FAIL slower; BENCH_FAIL=min:40% loosens it).
bench-save: venv
	$(PYBENCH) --benchmark-autosave

bench-compare: venv
	$(PYBENCH) --benchmark-compare --benchmark-compare-fail=$(BENCH_FAIL)

# On a machine with an NVIDIA GPU, CuPy and numba-cuda: the CUDA tests and a quick GPU benchmark, results in OUT.
gpu-check:
	@test -n "$(OUT)" || { echo "usage: make gpu-check OUT=<folder> [GPU_PY=python3]"; exit 2; }
	GPU_PY=$(or $(GPU_PY),python3) tools/gpu_check.sh $(OUT)

verify: venv
	$(PY) -m bench verify

clean:
	rm -rf $(VENV) .numba_cache .pytest_cache
