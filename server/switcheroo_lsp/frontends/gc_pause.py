"""The cyclic GC, paused while the server builds what it keeps.

An analysis allocates a syntax tree's worth of objects and the index's scan and facts a
workspace's worth; each allocation burst triggers collections whose full ones walk everything
the server already keeps (the index's facts, the analyses kept for hovers and code actions):
measured 55-60 ms per full collection in a first analysis at 300 and 3,000 files, as long as the
analysis itself. What these build holds no reference cycles (freed by reference counting), so the
GC is paused around them, and what was alive before is frozen out of its sight. Shared by the
event loop and the index's thread: the GC resumes when the last of them is done.
"""

from __future__ import annotations

import gc
import threading
from contextlib import contextmanager

_lock = threading.Lock()
_depth = 0
_resume = False


@contextmanager
def paused():
    global _depth, _resume
    with _lock:
        if _depth == 0:
            _resume = gc.isenabled()
            gc.freeze()         # what is alive already stays out of its sight afterwards too
            gc.disable()
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0 and _resume:
                gc.enable()
