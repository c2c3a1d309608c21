"""Read how many calls this pjsua2 build can really hold.

pjsua silently clamps ``maxCalls`` to the compile-time ``PJSUA_MAX_CALLS`` (4 in
every PyPI wheel); pjsua2 exposes neither number, so we ask pjsua's C API in
the same shared object through ctypes. Call these only on the engine thread
after ``libInit``.
"""

from __future__ import annotations

import ctypes
from functools import cache


@cache
def _lib() -> ctypes.CDLL:
    from pjsua2 import _pjsua2

    lib = ctypes.CDLL(_pjsua2.__file__)
    lib.pjsua_call_get_max_count.restype = ctypes.c_uint
    lib.pjsua_call_get_count.restype = ctypes.c_uint
    return lib


def max_calls() -> int:
    """Call slots after pjsua's clamp: min(requested maxCalls, PJSUA_MAX_CALLS)."""
    return int(_lib().pjsua_call_get_max_count())


def calls_in_use() -> int:
    """Call slots pjsua holds right now, including calls still being set up."""
    return int(_lib().pjsua_call_get_count())
