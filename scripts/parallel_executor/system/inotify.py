"""Files moved into a directory, or written to, as Linux's inotify reports them (through libc; none elsewhere).

The Dask backend learns that an attempt ended from the record its worker renames into the results
folder, without waiting for Dask's own messages, where the worker shares this machine's kernel; a
worker elsewhere (NFS) is not seen, and Dask's report still comes. The API server follows a run's
journal as it grows (IN_MODIFY).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import struct

IN_MODIFY = 0x00000002
IN_MOVED_TO = 0x00000080
_HEADER = struct.Struct("iIII")  # wd, mask, cookie, len; then len bytes of name


class Watcher:
    """Watches paths; `fd` is readable when `mask` happened to one; `names()` reads what (in a directory)."""

    def __init__(self, mask: int = IN_MOVED_TO) -> None:
        self.mask = mask
        self._libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
        fd = self._libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
        if fd < 0:
            raise OSError(ctypes.get_errno(), "inotify_init1")
        self.fd: int = fd
        self.watched: set[str] = set()

    def watch(self, directory: str) -> None:
        if directory not in self.watched:
            if self._libc.inotify_add_watch(self.fd, os.fsencode(directory), self.mask) < 0:
                raise OSError(ctypes.get_errno(), "inotify_add_watch", directory)
            self.watched.add(directory)

    def names(self) -> list[str]:
        """The names moved in since the last call (in any watched directory)."""
        found = []
        try:
            while data := os.read(self.fd, 65536):
                at = 0
                while at + _HEADER.size <= len(data):
                    length = _HEADER.unpack_from(data, at)[3]
                    name = data[at + _HEADER.size: at + _HEADER.size + length].split(b"\0", 1)[0]
                    found.append(os.fsdecode(name))
                    at += _HEADER.size + length
        except BlockingIOError:
            pass
        return found

    def close(self) -> None:
        os.close(self.fd)


def moved_in(mask: int = IN_MOVED_TO) -> Watcher | None:
    """A watcher, or None where there is no inotify."""
    try:
        return Watcher(mask)
    except (OSError, AttributeError):
        return None
