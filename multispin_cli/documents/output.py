"""Writing results: atomically to a file, or to stdout.

What ``--output`` does with what is already there:

* a regular file is replaced atomically (a temporary file in the same folder, then a rename), with
  its permission bits kept; a read-only file is refused, not replaced;
* a symbolic link is followed: the file it points at is replaced (the link stays a link);
* a device node or a named pipe (``/dev/null``, ``/dev/stdout``, a FIFO with a reader) is written
  into, never replaced by a regular file; a FIFO without a reader and a socket are refused;
* a write that fails (a full disk, a quota) is one clear error, and the temporary file is removed,
  also when the process is stopped by SIGTERM or Ctrl-C meanwhile.
"""

from __future__ import annotations

import errno
import os
import signal
import stat
import sys
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from multispin_cli.errors import InputError


class _Terminated(BaseException):
    """SIGTERM arrived while a temporary file existed (raised so that cleanup code runs)."""


@contextmanager
def _terminate_cleanly() -> Iterator[None]:
    """While inside, SIGTERM raises :class:`_Terminated` (so ``finally`` blocks run) instead of
    killing the process outright; afterwards the signal's default action is taken as usual.

    Only where Python lets us (the main thread) and where nobody else handles SIGTERM already.
    """
    if threading.current_thread() is not threading.main_thread() or signal.getsignal(signal.SIGTERM) != signal.SIG_DFL:
        yield
        return

    def handler(signum, frame):
        raise _Terminated()

    signal.signal(signal.SIGTERM, handler)
    try:
        yield
    except _Terminated:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGTERM)  # die by the signal, as the sender expects
        raise SystemExit(128 + signal.SIGTERM) from None
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _failure(exc: OSError, path: Path) -> InputError:
    reason = exc.strerror or str(exc)
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        reason += " (free some space or write elsewhere)"
    return InputError(f"cannot write: {reason}", path=path)


def _write_into(path: Path, data: bytes, mode: int) -> None:
    """Write into an existing device node or FIFO (never replace it with a regular file)."""
    if stat.S_ISSOCK(mode):
        raise InputError("cannot write: is a socket", path=path)
    flags = os.O_WRONLY | (os.O_NONBLOCK if stat.S_ISFIFO(mode) else 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        if exc.errno == errno.ENXIO:
            raise InputError("cannot write: a named pipe with no reader", path=path) from None
        raise _failure(exc, path) from None
    try:
        if stat.S_ISFIFO(mode):
            os.set_blocking(fd, True)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
    except OSError as exc:
        raise _failure(exc, path) from None
    finally:
        os.close(fd)


def write_atomic(path: str | Path, data: str | bytes) -> None:
    """Write ``data`` (text as UTF-8, or bytes) to ``path`` through a temporary file and a rename.

    A reader (or an interrupted run) sees either the old file or the whole new one, never half of
    it. The temporary file lives in the same folder so the rename stays on one file system. See the
    module docstring for links, device nodes, pipes and read-only files.
    """
    path = Path(path)
    data = data.encode("utf-8") if isinstance(data, str) else data
    try:
        existing = os.stat(path)  # follows a symbolic link to what it points at
    except FileNotFoundError:
        existing = None
    except OSError as exc:
        raise _failure(exc, path) from None
    if existing is not None and stat.S_ISDIR(existing.st_mode):
        raise InputError("cannot write: is a directory", path=path)
    if existing is not None and not stat.S_ISREG(existing.st_mode):
        _write_into(path, data, existing.st_mode)
        return
    if existing is not None and (not existing.st_mode & 0o222 or not os.access(path, os.W_OK)):
        raise InputError("cannot write: the file is read-only (not replaced)", path=path)
    target = Path(os.path.realpath(path)) if path.is_symlink() else path
    folder = target.parent if str(target.parent) else Path(".")
    if not folder.is_dir():
        raise InputError(f"cannot write: folder {str(folder)!r} does not exist", path=path)
    import tempfile  # here: output to stdout needs none of it

    with _terminate_cleanly():
        try:
            fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=folder)
        except OSError as exc:
            raise _failure(exc, path) from None
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            if existing is not None:
                mode = stat.S_IMODE(existing.st_mode)
            else:
                umask = os.umask(0)
                os.umask(umask)
                mode = 0o666 & ~umask
            os.chmod(tmp, mode)
            os.replace(tmp, target)
        except BaseException as exc:
            Path(tmp).unlink(missing_ok=True)
            if isinstance(exc, OSError):
                raise _failure(exc, path) from None
            raise


def emit(text: str, output: str | Path | None) -> None:
    """Send ``text`` to ``output`` (atomically) or to stdout."""
    if output is None:
        try:
            sys.stdout.write(text)
            sys.stdout.flush()
        except BrokenPipeError:
            raise
        except OSError as exc:
            raise stdout_failure(exc) from None
    else:
        write_atomic(output, text)


def stdout_failure(exc: OSError) -> InputError:
    """The one-line error for output that standard output could not take (a full disk, ...)."""
    return InputError(f"cannot write to standard output: {exc.strerror or exc}")
