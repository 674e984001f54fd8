"""Runs the legacy Theano 1.0.5 test files against ``pytensor_nnet``.

    python tests/legacy/run_legacy.py [--files NAME ...] [pytest options]

Downloads the Theano 1.0.5 source distribution from the package index (once; cached in
``.legacy-theano/`` at the repository root, or ``$PYTENSOR_NNET_LEGACY_CACHE``), extracts the
test files below unchanged into a tree beside our test-only ``theano`` package
(``tests/legacy/theano_compat``, which maps the legacy names onto PyTensor and
``pytensor_nnet``), and runs them with pytest. The skip and expected-failure lists, each entry
with its reason, are in ``tests/legacy/expectations.py``.
"""

import argparse
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
VERSION = "1.0.5"
SDIST = f"Theano-{VERSION}.tar.gz"
#: short name -> path in the source distribution
FILES = {
    "abstract_conv": "theano/tensor/nnet/tests/test_abstract_conv.py",
    "conv": "theano/tensor/nnet/tests/test_conv.py",
    "conv3d2d": "theano/tensor/nnet/tests/test_conv3d2d.py",
    "corr": "theano/tensor/nnet/tests/test_corr.py",
    "blocksparse": "theano/tensor/nnet/tests/test_blocksparse.py",
    "pool": "theano/tensor/signal/tests/test_pool.py",
    "sp": "theano/sparse/sandbox/test_sp.py",
    "sp2": "theano/sparse/tests/test_sp2.py",
}
#: packages of the extracted files that our compat tree does not define
TEST_PACKAGES = ("theano/tensor/nnet/tests", "theano/tensor/signal/tests")


def cache_dir():
    return Path(os.environ.get("PYTENSOR_NNET_LEGACY_CACHE", ROOT / ".legacy-theano"))


def fetch_sdist(cache):
    """The source distribution, downloaded with pip the first time."""
    path = cache / SDIST
    if not path.exists():
        cache.mkdir(parents=True, exist_ok=True)
        command = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:"]
        if subprocess.run([*command, f"theano=={VERSION}", "-d", str(cache)]).returncode != 0:
            sys.exit(
                f"pip could not download {SDIST} (pip prepares its metadata with its setup.py, which "
                "needs Python < 3.12): download it once with Python 3.11, or put the file in "
                f"{cache} (PYTENSOR_NNET_LEGACY_CACHE)"
            )
    return path


def build_tree(cache, names):
    """A fresh tree: our compat packages plus the selected legacy test files, unchanged."""
    tree = cache / "tree"
    shutil.rmtree(tree, ignore_errors=True)
    shutil.copytree(HERE / "theano_compat", tree, ignore=shutil.ignore_patterns("__pycache__"))
    for package in TEST_PACKAGES:
        (tree / package).mkdir(parents=True, exist_ok=True)
        (tree / package / "__init__.py").write_text("")
    with tarfile.open(fetch_sdist(cache)) as sdist:
        for name in names:
            member = sdist.getmember(f"Theano-{VERSION}/{FILES[name]}")
            (tree / FILES[name]).write_bytes(sdist.extractfile(member).read())
    return tree


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--files",
        nargs="+",
        choices=sorted(FILES),
        default=sorted(FILES),
        metavar="NAME",
        help="legacy test files to run: " + ", ".join(sorted(FILES)) + " (default: all)",
    )
    args, pytest_args = parser.parse_known_args(argv)
    tree = build_tree(cache_dir(), args.files)
    sys.path[:0] = [str(tree), str(ROOT)]
    import pytest

    return pytest.main(
        [
            *(str(tree / FILES[name]) for name in args.files),
            "-c",
            str(HERE / "pytest.ini"),
            "--rootdir",
            str(tree),
            "-p",
            "tests.legacy.plugin",
            "-p",
            "no:cacheprovider",
            *pytest_args,
        ]
    )


if __name__ == "__main__":
    sys.exit(main())
