"""The compiled core: cffi's ``ffi`` and ``lib`` for ``snabbpy._native``."""

try:
    from snabbpy._native import ffi, lib
except ImportError as exc:  # pragma: no cover - only on a broken install
    raise ImportError(
        "snabbpy's native core is not built: run 'pip install -e .' in the "
        "project (or 'python snabbpy/native_build.py' to rebuild it in place)"
    ) from exc

__all__ = ["ffi", "lib"]
