"""The simulator's CuPy stand-in (kernels/_simcupy.py) refuses what CuPy refuses, so that code which passes
under NUMBA_ENABLE_CUDASIM=1 does not fail on a GPU for touching device data from the host. Each case cites
where CuPy says so: its documentation (docs.cupy.dev) or its source (github.com/cupy/cupy, cupy/_core/
core.pyx, _kernel.pyx, _scalar.pyx, _routines_indexing.pyx, cupy/__init__.py). The stand-in is pure Python
over NumPy, so these run in the CPU process; on a GPU the same cases run against CuPy itself."""
import pickle

import numpy as np
import pytest

from kernels import _simcupy


def _gpu_cupy():
    try:
        import cupy
        return cupy if cupy.is_available() else None
    except Exception:
        return None


MODULES = [pytest.param(_simcupy, id="stand-in")]
if _gpu_cupy() is not None:
    MODULES.append(pytest.param(_gpu_cupy(), id="cupy"))


@pytest.fixture(params=MODULES)
def cp(request):
    return request.param


IMPLICIT = "Implicit conversion to a NumPy array is not allowed"


# ndarray.__array__ raises (core.pyx; docs "Differences between CuPy and NumPy": "implicit conversion ... is
# not allowed"): everything that makes a NumPy array of device data fails
@pytest.mark.parametrize("convert", [np.asarray, np.array, np.ascontiguousarray,
                                     lambda d: np.testing.assert_allclose(d, np.zeros(3)),
                                     lambda d: np.zeros(3) + np.asarray(d)],
                         ids=["asarray", "array", "ascontiguousarray", "testing", "host-arith"])
def test_implicit_conversion_to_numpy_raises(cp, convert):
    d = cp.zeros(3)
    with pytest.raises(TypeError, match=IMPLICIT):
        convert(d)


# a NumPy array where a device array is expected: _kernel.pyx _preprocess_arg -> _scalar.pyx CScalar raises
# "Unsupported type <class 'numpy.ndarray'>" (0-d arrays too: they are not NumPy scalars)
@pytest.mark.parametrize("mix", [lambda d, h: d + h, lambda d, h: h * d, lambda d, h: d.__iadd__(h),
                                 lambda d, h: np.add(d, h), lambda d, h: d < h],
                         ids=["add", "rmul", "iadd", "ufunc", "compare"])
@pytest.mark.parametrize("host", [np.ones(3), np.array(1.0)], ids=["array", "0-d"])
def test_host_arrays_are_refused_as_operands(cp, mix, host):
    with pytest.raises(TypeError):
        mix(cp.zeros(3), host)


def test_cupy_functions_refuse_host_arrays_but_asarray_copies_them(cp):
    d = cp.arange(3.0)
    for call in (lambda: cp.concatenate([d, np.ones(2)]), lambda: cp.where(d > 0, d, np.zeros(3)),
                 lambda: cp.exp(np.ones(2))):
        with pytest.raises(TypeError):
            call()
    e = cp.asarray(np.arange(3.0))                 # the explicit host-to-device copy
    assert type(e) is cp.ndarray
    np.testing.assert_array_equal(e.get(), [0.0, 1.0, 2.0])
    np.testing.assert_array_equal(cp.asnumpy(e), [0.0, 1.0, 2.0])


def test_setitem_from_host_array_is_refused(cp):
    d = cp.zeros(3)
    with pytest.raises(TypeError):
        d[...] = np.ones(3)          # core.pyx __setitem__: only with CUPY_EXPERIMENTAL_SLICE_COPY and d[:]
    d[1] = 5.0                       # scalars are fine
    d[cp.asarray(np.array([0]))] = cp.ones(1)
    np.testing.assert_array_equal(d.get(), [1.0, 5.0, 0.0])


def test_numpy_and_list_indices_are_accepted(cp):
    # _routines_indexing.pyx _prepare_slice_list: lists and NumPy arrays are converted with core.array
    d = cp.arange(5.0)
    np.testing.assert_array_equal(d[np.array([0, 4])].get(), [0.0, 4.0])
    np.testing.assert_array_equal(d[[1, 2]].get(), [1.0, 2.0])


def test_results_stay_on_the_device(cp):
    d = cp.arange(4.0)
    for r in (d.sum(), cp.sum(d), np.sum(d), d.max(), cp.mean(d), d[0], np.exp(d)):
        assert type(r) is cp.ndarray, type(r)      # full reductions give 0-d device arrays, not NumPy scalars
    assert type(np.concatenate([d, d])) is cp.ndarray   # __array_function__ dispatches to cupy.concatenate


def test_explicit_host_reads(cp):
    d = cp.arange(4.0)
    assert float(d.sum()) == 6.0 and int(d[1]) == 1 and d[2].item() == 2.0 and d.tolist() == [0, 1, 2, 3]
    assert bool(d[1]) and not bool(d[0])
    with pytest.raises(ValueError):
        bool(d)                      # core.pyx __nonzero__: more than one element is ambiguous
    with pytest.raises(TypeError):
        float(d)
    with pytest.raises(TypeError):
        range(d[1])                  # no __index__
    with pytest.raises(TypeError):
        iter(d.sum())                # core.pyx __iter__: "iteration over a 0-d array"
    rows = list(cp.arange(6.0).reshape(2, 3))
    assert len(rows) == 2 and all(type(r) is cp.ndarray for r in rows)


def test_names_cupy_lacks_are_missing(cp):
    for name in ("errstate", "seterr", "bool", "asmatrix"):       # not in cupy/__init__.py
        assert not hasattr(cp, name), name
    assert not hasattr(cp.zeros(2), "ctypes") and not hasattr(cp.zeros(2), "resize")


def test_interfaces_a_gpu_library_reads(cp):
    d = cp.arange(6, dtype=np.float32).reshape(2, 3)
    cai = d.__cuda_array_interface__
    assert cai["shape"] == (2, 3) and cai["typestr"] == "<f4" and cai["version"] == 3
    assert d.__dlpack_device__()[0] == 2                           # kDLCUDA
    assert d.flags.c_contiguous and not d.T.flags.c_contiguous
    assert isinstance(d.data.ptr, int)
    with pytest.raises((TypeError, ValueError, RuntimeError, BufferError)):
        np.from_dlpack(d)            # NumPy takes CPU memory only
    back = pickle.loads(pickle.dumps(d))
    assert type(back) is cp.ndarray and back.get().tolist() == d.get().tolist()
    assert cp.cuda.get_current_stream() is not None and cp.cuda.runtime.getDeviceCount() >= 1
