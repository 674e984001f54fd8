"""Numba's on-disk cache of this package's functions follows the whole package's code.

Numba keys a cached function on its own file only (modification time and size). A function
links the machine code of the functions it calls into its own, so after an edit to a kernel in
another file its cache still holds the old callee, and a new process runs the old code
(silently, or failing a consistency check). An upgrade rewrites every file, but an edit in a
development checkout does not.

So every function defined in a file of a covered directory (this package; :func:`cover` adds
others) is cached under a stamp of the sources of all the covered files that use Numba, in
place of its own file's stamp: an edit anywhere compiles them again. The locators are Numba's
own (the same cache directories: ``NUMBA_CACHE_DIR``, ``__pycache__``, ...), wrapped; they
are placed before Numba's in its list and answer only for covered files, so no other code's
caching changes. The stamp is computed once per process, when the first function of a covered
file is decorated.

Their data files are also named after their keys (signature and target), not numbered in the
order of saving, and each is written before the index that names it. Numba numbers a new entry
after the index it has just read, so two processes compiling one function for different
signatures at the same moment (two test workers on the float32 and float64 cases of one test)
can pick the same number, and the index can end up naming the other signature's machine code.
Named by key, an entry always holds its own key's code; two processes can still overwrite each
other's index, which loses an entry (compiled again later), not its meaning. (Numba's cache
file class is replaced by :class:`KeyNamedCacheFile`, which saves every other function's
entries as Numba does.)
"""

from __future__ import annotations

import hashlib
import os
import pickle
from pathlib import Path

from numba.core import caching
from numba.core.caching import CacheImpl, IndexDataCacheFile

_roots: list[Path] = []
_stamp: str | None = None


def _covered(py_file) -> bool:
    try:
        path = Path(py_file).resolve()
    except (OSError, TypeError):
        return False
    return any(path.is_relative_to(root) for root in _roots)


def source_stamp() -> str:
    """Digest of the covered files that mention Numba or ``compiled_only`` (their paths and
    contents)."""
    global _stamp
    if _stamp is None:
        digest = hashlib.sha256()
        for root in _roots:
            for path in sorted(root.rglob("*.py")):
                text = path.read_bytes()
                if b"numba" in text or b"compiled_only" in text:
                    digest.update(str(path.relative_to(root)).encode() + b"\0" + text + b"\0")
        _stamp = digest.hexdigest()
    return _stamp


def _stamped_locator(base):
    """``base`` (a Numba cache locator class) answering only for covered files, with
    :func:`source_stamp` as their source stamp."""

    class PackageStampLocator(base):
        def get_source_stamp(self):
            return source_stamp()

        @classmethod
        def from_function(cls, py_func, py_file):
            if not _covered(py_file):
                return None
            return super().from_function(py_func, py_file)

    PackageStampLocator.__name__ = PackageStampLocator.__qualname__ = f"PackageStamp{base.__name__}"
    return PackageStampLocator


class KeyNamedCacheFile(IndexDataCacheFile):
    """Numba's index and data files of one function; for a function under the package stamp
    (a string; Numba's own stamps are tuples), each data file named after its key."""

    def save(self, key, data):
        if not isinstance(self._source_stamp, str):
            return super().save(key, data)
        digest = hashlib.sha256(pickle.dumps(key, protocol=4)).hexdigest()[:24]
        name = f"{self._index_name[: -len('.nbi')]}.{digest}.nbc"
        self._save_data(name, data)
        overloads = self._load_index()
        if overloads.get(key) != name:
            overloads[key] = name
            self._save_index(overloads)


def cover(directory) -> None:
    """Cache the functions of the files under ``directory`` with the package-wide stamp (for
    this package at import; for tests). Call it before those files' functions are decorated."""
    global _stamp
    root = Path(directory).resolve()
    if root not in _roots:
        _roots.append(root)
        _stamp = None
    if not any(getattr(cls, "_pytensor_nnet_stamped", False) for cls in CacheImpl._locator_classes):
        wrapped = [_stamped_locator(base) for base in CacheImpl._locator_classes]
        for cls in wrapped:
            cls._pytensor_nnet_stamped = True
        CacheImpl._locator_classes[:0] = wrapped
    caching.IndexDataCacheFile = KeyNamedCacheFile


cover(os.path.dirname(os.path.abspath(__file__)))
