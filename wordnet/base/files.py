"""Files written safely: atomic writes, stale temporaries, exclusive locks.

Every file devise writes goes through :func:`atomic_path`, so an interrupted run (even
one killed with SIGKILL) never leaves a half-written file under a final name; what it
can leave is a hidden temporary file, which :func:`remove_stale_temps` clears. A folder
that one run writes over many minutes (a training bundle, a dataset) is guarded by
:func:`exclusive_lock`, so a second run refuses instead of interleaving its files with
the first one's. :func:`sha256_file` is the one place a file's SHA-256 is computed.
"""
from __future__ import annotations

import contextlib
import errno
import functools
import hashlib
import os
import re
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Iterator

from wordnet.base.errors import DeviseError

TEMP_MARK = ".tmp"
# ".<final name>.<8 random chars>.tmp<final suffixes>", as made by atomic_path
_TEMP_NAME = re.compile(r"^\..+\.[a-z0-9_]{8}\.tmp(\.[^.]+){0,2}$")


# errors about the place written to, not about a file the writer happened to be touching
TARGET_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EFBIG})


@contextlib.contextmanager
def names_target(target: str | os.PathLike) -> Iterator[None]:
    """Re-raise a full disk (or quota, read-only filesystem, too big a file) inside the block as an
    ``OSError`` naming ``target``: what the user asked to write, not the temporary file or the
    source file a copy was reading when the write failed."""
    try:
        yield
    except OSError as exc:
        if exc.errno in TARGET_ERRNOS and exc.filename != str(target):
            raise OSError(exc.errno, os.strerror(exc.errno), str(target)) from exc
        raise


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` on success.

    The temporary name ends with the final suffixes (Keras insists on ``.keras`` and
    ``.weights.h5``), lives in the same directory (so the rename is atomic on POSIX),
    starts with a dot, and is removed if the block raises. A process killed inside the
    block leaves only that hidden temporary file behind (see :func:`remove_stale_temps`).
    """
    path = Path(path)
    with names_target(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(
            prefix=f".{path.name}.", suffix=TEMP_MARK + "".join(path.suffixes[-2:]), dir=path.parent
        )
        os.close(fd)
        tmp_path = Path(tmp)
        tmp_path.unlink()  # let the writer create it (h5py/keras refuse some existing files)
        try:
            yield tmp_path
            os.replace(tmp_path, path)
        except BaseException:
            _abandon(tmp_path)
            raise


def _abandon(tmp: Path) -> None:
    """Remove a failed writer's temporary file."""
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()


def ensure_space(path: str | os.PathLike, nbytes: int) -> None:
    """Raise ``OSError(ENOSPC)`` naming ``path`` unless its filesystem has ``nbytes`` free.

    For writers that cannot fail cleanly: HDF5's own file driver (``keras.Model.save_weights``)
    leaves handles behind on a full disk that crash the interpreter as it exits, so the space
    is checked before such a write rather than discovered during it.
    """
    path = Path(path)
    folder = path.parent if path.parent.is_dir() else path.parent.parent
    try:
        free = shutil.disk_usage(folder).free
    except OSError:  # cannot tell: let the write itself find out
        return
    if free < nbytes:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "w", **kwargs) -> Iterator:
    """Open a temporary file for writing; it replaces ``path`` only when closed cleanly.

    HDF5 files are written through it too (``atomic_write(path, "w+b")`` handed to
    ``h5py.File``): HDF5 then writes through this Python file object, so a full disk raises
    an ordinary ``OSError`` (ENOSPC), where HDF5's own C file driver leaves a file that cannot
    be closed and whose handles crash the interpreter as it exits (a segmentation fault).
    """
    with atomic_path(path) as tmp:
        with open(tmp, mode, **kwargs) as fh:
            yield fh


def staging_folder(final: str | os.PathLike) -> Path:
    """A new hidden folder beside ``final`` to build it in, then rename onto it.

    ``tempfile.mkdtemp`` makes it ``drwx------`` whatever the umask (right for a private
    scratch folder, wrong for one that becomes a shared model bundle or export): its mode
    is set as ``mkdir`` would have set it, so other users read the result as any other file.
    """
    final = Path(final)
    folder = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=TEMP_MARK, dir=final.parent))
    umask = os.umask(0o022)
    os.umask(umask)
    os.chmod(folder, 0o777 & ~umask)
    return folder


def ensure_readable(path: str | os.PathLike) -> None:
    """Raise the ``OSError`` (``PermissionError``...) of opening ``path`` for reading, if any.

    For readers that turn any failure into "corrupt, rebuild it": a file that is merely
    unreadable must be reported as such, with the reason, not condemned.
    """
    with open(path, "rb"):
        pass


def sha256_file(path: str | os.PathLike, digest=None):
    """Feed the bytes of ``path`` into ``digest`` (a new SHA-256 by default), 1 MiB at a time; return it.

    Pass one ``digest`` for several files to hash them as one stream (a vectors file and its
    side files, a checkpoint); call ``.hexdigest()`` on the result for one file.
    """
    digest = hashlib.sha256() if digest is None else digest
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest


def is_stale_temp(path: str | os.PathLike) -> bool:
    """Whether ``path`` is named like a temporary file of :func:`atomic_path`."""
    return bool(_TEMP_NAME.match(Path(path).name))


def remove_stale_temps(folder: str | os.PathLike, name: str | None = None) -> list[Path]:
    """Delete temporary files a killed writer left in ``folder`` (not recursive); return them.

    With ``name``, only the temporaries of the files ``name`` and ``name.*`` (a file that
    shares its folder with others, each with its own lock). Only call this while holding
    the lock that guards them: a live writer's temporary file looks exactly like a dead one's.
    """
    folder = Path(folder)
    removed = []
    if folder.is_dir():
        for p in folder.iterdir():
            if name is not None and not p.name.startswith(f".{name}."):
                continue
            if p.is_file() and is_stale_temp(p):
                with contextlib.suppress(FileNotFoundError):
                    p.unlink()
                    removed.append(p)
    return removed


# -- exclusive locks -------------------------------------------------------------------
def lock_path_for(folder: str | os.PathLike) -> Path:
    """The lock file guarding ``folder``: a hidden file beside it (``.<name>.lock``).

    Beside rather than inside, so that creating the lock never makes a new output
    folder look non-empty, and ``--overwrite`` (which removes the folder) keeps it.
    """
    folder = Path(folder).expanduser()
    return folder.parent / f".{folder.name}.lock"


class LockedError(DeviseError):
    """Another live process holds the lock."""

    def __init__(self, message: str, pid: int | None):
        super().__init__(message)
        self.pid = pid


@contextlib.contextmanager
def exclusive_lock(path: str | os.PathLike, what: str = "") -> Iterator[Path]:
    """Hold an exclusive lock on the file ``path`` (created, holding our pid) for the block.

    The lock is an OS file lock (``flock`` on POSIX, ``msvcrt.locking`` on Windows), so
    the kernel releases it when the holder dies, even by SIGKILL: a lock file left by a
    dead process is stale and is simply taken over. If a live process holds it,
    :class:`LockedError` names ``what`` (default: the lock file) and the holder's pid.
    The file is removed on release.
    """
    path = Path(path).expanduser()
    with names_target(guarded_by(path)):  # a full disk names the folder being written, not its lock
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = _acquire(path, what or str(path))
    try:
        yield path
    finally:
        _release(path, fd)


def guarded_by(lock: Path) -> Path:
    """The folder a lock made by :func:`lock_path_for` guards (any other lock file: itself)."""
    name = lock.name
    if name.startswith(".") and name.endswith(".lock") and len(name) > len("..lock"):
        return lock.parent / name[1:-len(".lock")]
    return lock


def lock_holder(path: str | os.PathLike) -> int | None:
    """The pid of the live process holding the lock at ``path``, or None (free or stale).

    A cheap question for early checks; :func:`exclusive_lock` is the real guard.
    """
    path = Path(path).expanduser()
    if not path.exists():
        return None
    try:
        fd = _acquire(path, str(path), create=False)
    except LockedError as exc:
        return exc.pid if exc.pid is not None else -1
    except FileNotFoundError:
        return None
    _unlock(fd)
    os.close(fd)
    return None


def locks_output_folder(what: str):
    """Decorator: hold :func:`exclusive_lock` on the folder given as the first argument while the function runs.

    For builders that write many files into one output folder over minutes (a dataset
    build): a second run into the same folder is refused instead of interleaved.
    """
    def decorate(func):
        @functools.wraps(func)
        def wrapper(out, *args, **kwargs):
            folder = Path(out).expanduser()
            with exclusive_lock(lock_path_for(folder), f"{what} {folder}"):
                return func(out, *args, **kwargs)

        return wrapper

    return decorate


def ensure_unlocked(path: str | os.PathLike, what: str = "") -> None:
    """Raise :class:`LockedError` now if a live process holds the lock at ``path`` (early CLI check)."""
    pid = lock_holder(path)
    if pid is not None:
        raise LockedError(_locked_message(what or str(path), pid if pid > 0 else None), pid)


def _locked_message(what: str, pid: int | None) -> str:
    holder = f"pid {pid}" if pid is not None else "a process that is just starting"
    return f"{what} is in use by another devise process ({holder}); wait for it to finish, or stop it and try again"


def _acquire(path: Path, what: str, create: bool = True) -> int:
    while True:
        fd = os.open(path, os.O_RDWR | (os.O_CREAT if create else 0), 0o644)
        if not _try_lock(fd):
            pid = _read_pid(fd)
            os.close(fd)
            raise LockedError(_locked_message(what, pid), pid)
        try:  # the previous holder may have removed the file between our open and lock
            same = os.path.samestat(os.fstat(fd), os.stat(path))
        except FileNotFoundError:
            same = False
        if same:
            break
        _unlock(fd)
        os.close(fd)
        if not create:
            raise FileNotFoundError(path)
    if create:
        try:
            os.ftruncate(fd, 0)
            os.lseek(fd, 0, os.SEEK_SET)
            os.write(fd, f"{os.getpid()}\n".encode())
        except OSError:  # a full disk: give the lock back rather than leave an empty lock file
            _release(path, fd)
            raise
    return fd


def _release(path: Path, fd: int) -> None:
    if sys.platform != "win32":  # remove while still holding it, so no one locks a doomed file
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
    _unlock(fd)
    os.close(fd)
    if sys.platform == "win32":  # pragma: no cover - an open file cannot be removed on Windows
        with contextlib.suppress(OSError):
            os.unlink(path)


def _read_pid(fd: int) -> int | None:
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        return int(os.read(fd, 32).decode("ascii").strip())
    except (OSError, ValueError, UnicodeDecodeError):
        return None


if sys.platform == "win32":  # pragma: no cover - exercised on Windows only
    import msvcrt

    def _try_lock(fd: int) -> bool:
        try:
            os.lseek(fd, 0, os.SEEK_SET)
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1 << 20)  # a region, not the pid bytes we read
            return True
        except OSError:
            return False

    def _unlock(fd: int) -> None:
        with contextlib.suppress(OSError):
            os.lseek(fd, 0, os.SEEK_SET)
            msvcrt.locking(fd, msvcrt.LK_UNLCK, 1 << 20)
else:
    import fcntl

    def _try_lock(fd: int) -> bool:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            return False

    def _unlock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_UN)
