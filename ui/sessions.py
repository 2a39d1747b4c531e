"""What a session leaves behind leaves the server: its uploads, and the page values it held.

Two things kept a closed tab's data in the server's memory (``benchmarks/results/load.md``):

- Streamlit keeps a disconnected session for ``server.disconnectedSessionTTL`` seconds (120 by
  default) so that the tab can reconnect; Streamlit 1.67's session store then forgets it without
  shutting it down, so its uploaded files, ``st.audio`` media and ``st.dataframe`` sources are
  never released. Each session's state holds a ``_SessionEnd`` guard; when Streamlit frees that
  state the guard releases them, as Streamlit's own shutdown would (a no-op after a real one).
- Every page run leaves its namespace in a reference cycle (a function a page defines refers to
  the page's globals), holding every value the page had: an upload's bytes, a 100,000-row result.
  With ``runner.postScriptGC = false`` (a full collection costs ~0.3 s with torch loaded) only a
  full collection frees them, and one rarely comes. ``collect_soon`` runs one a few seconds after
  a session ends or a Batch job finishes, at most one per ``COLLECT_AFTER`` seconds.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import threading
import weakref

import streamlit as st
from streamlit import runtime
from streamlit.runtime.scriptrunner import get_script_run_ctx

GUARD_KEY = "_release_uploads_on_session_end"
COLLECT_AFTER = 5.0  # s: sessions that end together (a team closing its tabs) share one collection
_collect_lock = threading.Lock()
_collect_pending: list[threading.Timer] = []


class _SessionEnd:
    """Lives in one session's ``st.session_state``: freed with it, it frees the session's files."""

    def __init__(self, session_id: str):
        self.session_id = session_id
        weakref.finalize(self, session_ended, session_id)


def release_uploads_when_session_ends() -> None:
    """Give this session its guard (once; call on every run). Nothing to do outside a server (AppTest)."""
    if GUARD_KEY in st.session_state or not runtime.exists():
        return
    context = get_script_run_ctx()
    if context is not None:
        st.session_state[GUARD_KEY] = _SessionEnd(context.session_id)


def session_ended(session_id: str) -> None:
    """Drop ``session_id``'s uploaded files, media and dataframe sources; collect soon after."""
    if runtime.exists():
        server = runtime.get_instance()
        server.uploaded_file_mgr.remove_session_files(session_id)
        server.media_file_mgr.clear_session_refs(session_id)
        server.media_file_mgr.remove_orphaned_files()
        server.dataframe_source_mgr.clear_all_for_session(session_id)
    collect_soon()


def collect_soon() -> None:
    """One full garbage collection ``COLLECT_AFTER`` seconds from now (unless one is pending),
    then freed memory handed back to the system."""
    with _collect_lock:
        if _collect_pending:
            return
        timer = threading.Timer(COLLECT_AFTER, _collect)
        timer.daemon = True
        _collect_pending.append(timer)
    timer.start()


def _collect() -> None:
    with _collect_lock:
        _collect_pending.clear()
    gc.collect()
    return_freed_memory()


def return_freed_memory() -> None:
    """Ask pyarrow's pool (pandas' text columns) and glibc to give freed memory back to the
    system; both otherwise keep it for reuse, and the server's RSS stays at its high-water mark."""
    try:
        import pyarrow

        pyarrow.default_memory_pool().release_unused()
    except ImportError:
        pass
    libc = ctypes.util.find_library("c")
    if libc is not None:
        trim = getattr(ctypes.CDLL(libc), "malloc_trim", None)  # glibc only
        if trim is not None:
            trim(0)
