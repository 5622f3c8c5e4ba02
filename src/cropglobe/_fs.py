"""Atomic file writes: write to a temporary name in the target folder, then rename."""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "LOCK_NAME",
    "NAME_BYTES",
    "atomic_dir",
    "atomic_path",
    "cap_name",
    "folder_lock",
    "json_default",
    "safe_name",
]


_UMASK_LOCK = threading.Lock()


def _umask() -> int:
    """The process umask now: read from ``/proc/self/status`` where there is one (Linux),
    else by setting and restoring it (under a lock)."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    with _UMASK_LOCK:
        mask = os.umask(0o022)
        os.umask(mask)
    return mask


def _about(exc: OSError, target: Path) -> OSError:
    """The same error, naming the user's path instead of a temporary name beside it."""
    return OSError(exc.errno, exc.strerror, str(target))


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` when the block succeeds.

    The temporary file keeps ``path``'s suffix (so writers that dispatch on the suffix work) and
    is removed if the block raises, so an interrupted write never leaves a file that looks
    complete. The parent folder is created when missing. The file gets the permissions a plain
    ``open()`` would give it (0666 less the umask), and errors of creating or renaming it name
    ``path``, not the temporary file.
    """
    target = Path(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(
            prefix=f".{target.stem}.", suffix=f".tmp{target.suffix}", dir=target.parent
        )
    except OSError as exc:
        raise _about(exc, target) from None
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        if tmp_path.exists():
            os.chmod(tmp_path, 0o666 & ~_umask())
        try:
            os.replace(tmp_path, target)
        except OSError as exc:
            raise _about(exc, target) from None
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary folder beside ``path``; move it onto ``path`` when the block succeeds.

    An existing folder at ``path`` is replaced only after the new one is complete. The folder
    gets the permissions of a plain ``mkdir`` (0777 less the umask) and the files in it those of
    a plain ``open()`` (0666 less the umask; some writers, such as safetensors', make them 0600,
    which colleagues or Dask workers running as another user could not read).
    """
    target = Path(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    except OSError as exc:
        raise _about(exc, target) from None
    try:
        yield tmp
        os.chmod(tmp, 0o777 & ~_umask())
        for item in tmp.rglob("*"):
            os.chmod(item, (0o777 if item.is_dir() else 0o666) & ~_umask())
        try:
            if target.exists():
                old = target.with_name(f".{target.name}.old")
                if old.exists():
                    shutil.rmtree(old)
                os.replace(target, old)
                os.replace(tmp, target)
                shutil.rmtree(old, ignore_errors=True)
            else:
                os.replace(tmp, target)
        except OSError as exc:
            raise _about(exc, target) from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def file_sha256(path: str | os.PathLike[str]) -> str:
    """SHA-256 (hex) of a file's bytes, read in 1 MiB pieces."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for piece in iter(lambda: fh.read(1 << 20), b""):
            digest.update(piece)
    return digest.hexdigest()


def json_default(obj: Any) -> Any:
    """``json.dumps(default=…)`` for NumPy scalars and arrays, paths, sets and objects with a
    ``to_dict()`` (such as :class:`cropglobe.series.TimeGrid`)."""
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, set | frozenset):
        return sorted(obj, key=str)
    if callable(getattr(obj, "to_dict", None)):
        return obj.to_dict()
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


_UNSAFE = re.compile(r"[/\\\x00]")


def safe_name(name: object) -> str:
    """``name`` as one file-name component: unchanged unless it could leave or break the folder
    it is joined to (a ``/``, ``\\`` or NUL in it; empty, ``.`` or ``..``); then those
    characters become ``_`` and a short hash of the original is appended, so that distinct
    names stay distinct. Names over :data:`NAME_BYTES` bytes are cut
    (:func:`cap_name`). (Names such as ``São Paulo`` stay as they are, so folders written by
    earlier versions are found again.)"""
    text = str(name)
    if not _UNSAFE.search(text) and text not in ("", ".", ".."):
        return cap_name(text)
    clean = _UNSAFE.sub("_", text).strip(".") or "_"
    return cap_name(f"{clean}-{hashlib.sha256(text.encode()).hexdigest()[:8]}")


#: the longest file-name component written (bytes): file systems take 255, and temporary
#: names and figure prefixes add to it
NAME_BYTES = 200


def cap_name(text: str, limit: int = NAME_BYTES) -> str:
    """``text`` unchanged if it fits in ``limit`` UTF-8 bytes; else cut, with a short hash of
    the whole appended so that distinct long names stay distinct."""
    raw = text.encode()
    if len(raw) <= limit:
        return text
    digest = hashlib.sha256(raw).hexdigest()[:8]
    head = raw[: limit - len(digest) - 1].decode("utf-8", errors="ignore")
    return f"{head}-{digest}"


#: the lock file an experiment holds in its folder while it runs
LOCK_NAME = ".cropglobe.lock"

_HELD: dict[str, int] = {}  # folder -> the thread holding it (a nested lock is a no-op)


@contextlib.contextmanager
def folder_lock(
    folder: str | os.PathLike[str], what: str, *, nested: bool = True
) -> Iterator[None]:
    """Hold ``folder`` for one caller: another process (or thread) asking for it gets a
    one-line :class:`CropGlobeError` naming the holder's pid, instead of both writing into it.

    The folder is created if needed (and removed again if nothing was written into it); the
    lock file is removed when the lock is released. An advisory ``flock`` on Linux and macOS;
    elsewhere no lock.

    Args:
        folder: the folder to hold.
        what: the holder, for the message (``"map"``).
        nested: whether the thread holding the folder may ask for it again (a no-op: one
            caller's nested steps); False refuses it like another thread, for holders that
            are independent jobs (two map jobs interleaved in one thread).
    """
    from cropglobe.errors import CropGlobeError

    path = Path(folder)
    key = str(path.resolve())
    me = threading.get_ident()
    if _HELD.get(key) == me and not nested:
        raise CropGlobeError(
            f"{path} is in use by another {what} of this thread (pid {os.getpid()}); let it "
            "finish first, or choose another output folder"
        )
    if _HELD.get(key) == me or (path.exists() and not path.is_dir()):
        yield  # nested, or a file where the folder should be (the caller says so)
        return
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    created = not path.exists()
    lock = path / LOCK_NAME
    for _ in range(5):  # the holder may remove the file between our open and our lock: retry
        path.mkdir(parents=True, exist_ok=True)
        fh = open(lock, "a+")  # noqa: SIM115 - closed below, or kept open while held
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            pid = fh.read().strip() or "?"
            fh.close()
            raise CropGlobeError(
                f"{path} is in use by another {what} (pid {pid}); wait for it to finish, or "
                "choose another output folder"
            ) from None
        try:
            same = os.fstat(fh.fileno()).st_ino == os.stat(lock).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        fh.close()  # we locked a file its holder had just removed
    else:  # pragma: no cover - five holders in a row released under us
        raise CropGlobeError(f"{path} is in use by another {what}; try again in a moment")
    with fh:
        fh.seek(0)
        fh.truncate()
        fh.write(str(os.getpid()))
        fh.flush()
        _HELD[key] = me
        try:
            yield
        finally:
            del _HELD[key]
            lock.unlink(missing_ok=True)  # while still locked (one left by a kill locks nothing)
            if created and not any(path.iterdir()):
                with contextlib.suppress(OSError):  # another caller just came in: its folder
                    path.rmdir()
