"""Keep Numba's on-disk cache of the fast engine in step with the model's equations.

Numba keys a cached function on its own source file only. The fast engine's integrators inline
the model's kernels (``ketadur/model``), so after an edit to the model alone (a development
checkout, ``git pull``) their cache would still hold the old equations: silently wrong results, or
a crash on a changed state count. :func:`drop_stale_cache` removes the engine's cache files
whenever the fingerprint of the sources they depend on changes. It must run before the first
call of a cached function (at import). A cache kept elsewhere (``NUMBA_CACHE_DIR``) is not
checked. One race is not covered: a process that imported the old sources and saves its compiled
code after another process has dropped the cache leaves old code under the new fingerprint. It
needs a source edit while the engine runs (a development checkout); delete the ``__pycache__``
folders of ``ketadur/engine`` and ``ketadur/model`` after such an edit.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path

FINGERPRINT_FILE = "ketadur-model.fingerprint"


def source_fingerprint(files: Iterable[Path]) -> str:
    """SHA-256 of the contents of ``files``, in sorted path order."""
    digest = hashlib.sha256()
    for f in sorted(files):
        digest.update(f.name.encode())
        digest.update(f.read_bytes())
    return digest.hexdigest()


def drop_stale_cache(sources: Iterable[Path], cache_dirs: Iterable[Path]) -> bool:
    """Delete Numba cache files (``*.nbi``, ``*.nbc``) in ``cache_dirs`` when the fingerprint
    of ``sources`` differs from the one recorded beside them; record the new one. Returns True
    when files were dropped. Never raises on a read-only install: the cache is then left as is."""
    fingerprint = source_fingerprint(sources)
    dirs = [Path(d) for d in cache_dirs]
    stamp = dirs[0] / FINGERPRINT_FILE
    try:
        if stamp.exists() and stamp.read_text() == fingerprint:
            return False
        dropped = False
        for d in dirs:
            for f in [*d.glob("*.nbi"), *d.glob("*.nbc")]:
                f.unlink(missing_ok=True)
                dropped = True
        stamp.parent.mkdir(parents=True, exist_ok=True)
        stamp.write_text(fingerprint)
        return dropped
    except OSError:
        return False
