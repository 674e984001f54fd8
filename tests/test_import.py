"""What ``import pytensor_nnet`` does, and does not do, checked in fresh interpreters."""

import subprocess
import sys
import textwrap

import pytest

from pytensor_nnet.compat import SUPPORTED_PYTENSOR, check_pytensor_version


def run_fresh(code):
    result = subprocess.run(
        [sys.executable, "-W", "error", "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_import_is_silent_and_loads_no_jax_or_torch():
    out = run_fresh(
        """
        import sys
        import pytensor_nnet, pytensor_nnet.sparse, pytensor_nnet.pool, pytensor_nnet.blocksparse
        print(sorted(m for m in ("jax", "torch") if m in sys.modules))
        """
    )
    assert out.strip() == "[]"


def test_import_leaves_pytensor_own_ops_alone():
    out = run_fresh(
        """
        import pytensor.sparse.basic as psb
        import pytensor.sparse.math as psm
        from pytensor.compile import optdb
        from pytensor.link.numba.dispatch.basic import numba_funcify, numba_funcify_and_cache_key

        classes = (psb.DenseFromSparse, psb.CSMGrad, psb.Cast, psm.Dot, psm.StructuredDot, psm.Usmm)
        def implementations():
            return [(d.dispatch(c), ) for c in classes for d in (numba_funcify, numba_funcify_and_cache_key)]

        before = implementations()
        import pytensor_nnet, pytensor_nnet.sparse
        assert implementations() == before
        names = set(optdb["specialize"].__db__)
        assert "pytensor_nnet_usmm_fusion" not in names
        pytensor_nnet.sparse.patch_pytensor_sparse()
        assert implementations() != before
        assert "pytensor_nnet_usmm_fusion" in set(optdb["specialize"].__db__)
        print("ok")
        """
    )
    assert out.strip() == "ok"


def test_backend_registrations_load_with_the_backend():
    pytest.importorskip("jax")
    out = run_fresh(
        """
        import sys
        import pytensor_nnet
        assert "pytensor_nnet.dispatch.jax" not in sys.modules
        import pytensor.link.jax.dispatch
        print("pytensor_nnet.dispatch.jax" in sys.modules)
        """
    )
    assert out.strip() == "True"


@pytest.mark.parametrize("version", [(2, 37, 0), (3, 0, 6), (4, 0, 0)])
def test_unsupported_pytensor_is_one_clear_import_error(version):
    text = ".".join(map(str, version))
    with pytest.raises(ImportError, match=f"PyTensor {text} is installed") as info:
        check_pytensor_version(version, text)
    assert SUPPORTED_PYTENSOR in str(info.value)


@pytest.mark.parametrize("version", [(2, 38, 3), (3, 0, 7), (3, 3, 8), (3, 9, 0)])
def test_supported_pytensor_passes(version):
    check_pytensor_version(version, ".".join(map(str, version)))
