"""Running ``python -m virality …`` from the tests.

``run`` calls ``virality.cli.main`` in this process (the contract tests: fast, no new
interpreter per case); ``run_process`` starts the real entry point, for the one smoke
test per command in tests/test_cli_smoke.py.
"""

from __future__ import annotations

import io
import subprocess
import sys
import warnings
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path

import torch

from virality.cli import main

ROOT = Path(__file__).resolve().parent.parent
PROCESS_TIMEOUT = 300  # seconds: generous, the 2 cores are shared


@dataclass(frozen=True)
class Result:
    """What a command left behind: its exit status and everything it printed."""

    code: int
    stdout: str
    stderr: str


def run(*args: str) -> Result:
    """``python -m virality *args`` in this process: exit status and captured output.

    An argparse exit (usage error, ``--help``) gives its status as the real command would.
    Warnings are printed to the captured stderr under the interpreter's default filters,
    as a real run would show them (so "one line on stderr" still sees a stray warning).
    Torch's thread count, which the commands set, is put back afterwards. Any other
    exception propagates: a traceback the real command would print fails the test."""
    threads = torch.get_num_threads()
    out, err = io.StringIO(), io.StringIO()
    try:
        with redirect_stdout(out), redirect_stderr(err), warnings.catch_warnings():
            _default_warning_filters()
            warnings.showwarning = _warning_to_stderr
            code = _exit_status(args)
    finally:
        torch.set_num_threads(threads)
    return Result(code, out.getvalue(), err.getvalue())


def _exit_status(args: tuple[str, ...]) -> int:
    try:
        return main(list(args))
    except SystemExit as end:  # argparse: --help (0) or a usage error (2)
        if end.code is None or isinstance(end.code, int):
            return end.code or 0
        print(end.code, file=sys.stderr)  # sys.exit("message"), as the interpreter reports it
        return 1


def _default_warning_filters() -> None:
    """The filters ``python`` starts with (no -W, no dev mode): deprecations are hidden."""
    warnings.resetwarnings()
    warnings.simplefilter("default")
    for category in (DeprecationWarning, PendingDeprecationWarning, ImportWarning, ResourceWarning):
        warnings.simplefilter("ignore", category)


def _warning_to_stderr(message, category, filename, lineno, file=None, line=None) -> None:
    sys.stderr.write(warnings.formatwarning(message, category, filename, lineno, line))


def run_process(*args: str, python_options: tuple[str, ...] = (), setup: str | None = None) -> Result:
    """``python [python_options] -m virality *args`` as a new process started in the repository.

    With ``setup`` (Python source) the process runs it first, then the ``virality`` package
    as ``__main__`` the way ``-m`` does (``runpy``), e.g. to shrink a training recipe."""
    if setup is None:
        command = [sys.executable, *python_options, "-m", "virality", *args]
    else:
        launcher = f"{setup}\nimport runpy\nrunpy.run_module('virality', run_name='__main__', alter_sys=True)\n"
        command = [sys.executable, *python_options, "-c", launcher, *args]
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, timeout=PROCESS_TIMEOUT)
    return Result(done.returncode, done.stdout, done.stderr)
