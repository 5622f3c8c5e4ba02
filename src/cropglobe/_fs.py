"""Atomic file writes: write to a temporary name in the target folder, then rename."""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["atomic_dir", "atomic_path", "json_default", "safe_name"]


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` when the block succeeds.

    The temporary file keeps ``path``'s suffix (so writers that dispatch on the suffix work) and
    is removed if the block raises, so an interrupted write never leaves a file that looks
    complete. The parent folder is created when missing.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(
        prefix=f".{target.stem}.", suffix=f".tmp{target.suffix}", dir=target.parent
    )
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, target)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary folder beside ``path``; move it onto ``path`` when the block succeeds.

    An existing folder at ``path`` is replaced only after the new one is complete.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    try:
        yield tmp
        if target.exists():
            old = target.with_name(f".{target.name}.old")
            if old.exists():
                shutil.rmtree(old)
            os.replace(target, old)
            os.replace(tmp, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


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


_SAFE = re.compile(r"[A-Za-z0-9_.+-]+")


def safe_name(name: object) -> str:
    """``name`` as one file-name component: unchanged when it is already safe (letters, digits,
    ``_ . + -``, not ``.``/``..``), otherwise the unsafe characters replaced by ``_`` and a
    short hash of the original appended, so that distinct names stay distinct and no value
    (``a/b``, ``..``) can reach outside the folder it is joined to."""
    text = str(name)
    if _SAFE.fullmatch(text) and text not in (".", ".."):
        return text
    clean = re.sub(r"[^A-Za-z0-9_.+-]", "_", text).strip(".") or "_"
    return f"{clean}-{hashlib.sha256(text.encode()).hexdigest()[:8]}"
