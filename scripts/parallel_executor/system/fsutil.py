"""Atomic JSON files and private directories: nothing is half-written, even after kill -9."""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path
from typing import Any

PRIVATE_FILE = 0o600
PRIVATE_DIR = 0o700
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)


def private_dir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR)
    return path


def free_name(path: Path, tag: str) -> Path:
    """`<name>.<tag>-<time>` beside path (with -2, -3... when taken): where a file is set aside or backed up."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    target, number = path.with_name(f"{path.name}.{tag}-{stamp}"), 1
    while target.exists() or target.is_symlink():
        number += 1
        target = path.with_name(f"{path.name}.{tag}-{stamp}-{number}")
    return target


def write_json_atomic(path: Path | str, data: Any, *, fsync: bool = False) -> None:
    write_atomic(path, (json.dumps(data, ensure_ascii=False) + "\n").encode(), fsync=fsync)  # C encoder


def write_atomic(path: Path | str, content: bytes, *, fsync: bool = False) -> None:
    """Write a temp file beside the target and rename it over: readers see old or new, never half."""
    folder, name = os.path.split(path)
    tmp = os.path.join(folder, f".{name}.{os.getpid()}.{threading.get_ident()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC | _NOFOLLOW, PRIVATE_FILE)
    try:
        os.write(fd, content)
        if fsync:
            os.fsync(fd)
    except BaseException:
        os.close(fd)
        os.unlink(tmp)
        raise
    os.close(fd)
    os.replace(tmp, path)
    if fsync:
        dir_fd = os.open(folder or ".", os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def open_private(path: Path | str, flags: int = os.O_RDWR | os.O_TRUNC) -> int:
    """Open (creating it) a file that may hold secrets (task output), readable by the owner only.
    A symbolic link where the file belongs is never followed: OSError (ELOOP)."""
    try:
        return os.open(path, flags | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, PRIVATE_FILE)
    except FileExistsError:
        fd = os.open(path, flags | os.O_CLOEXEC | _NOFOLLOW)
        os.fchmod(fd, PRIVATE_FILE)  # an older file of the same name may have had a wider mode
        return fd


def tail_file(path: str, limit: int) -> tuple[str, bool]:
    """The last `limit` bytes of the file at path as text (empty if it cannot be read; a link is not
    followed), and whether that is less than the whole file."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | _NOFOLLOW)
    except OSError:
        return "", False
    try:
        return tail_of(fd, limit), os.fstat(fd).st_size > limit
    finally:
        os.close(fd)


def tail_of(fd: int, limit: int) -> str:
    """The last `limit` bytes of an open file as text; a task printing gigabytes costs nothing here."""
    size = os.fstat(fd).st_size
    if not size:
        return ""
    return os.pread(fd, min(limit, size), max(0, size - limit)).decode("utf-8", errors="replace")
