"""system/inotify.py: what the Dask backend uses to see an attempt's end record land."""

from __future__ import annotations

import os
import select
from pathlib import Path

import pytest
from parallel_executor.system.inotify import moved_in

pytestmark = pytest.mark.timeout(20)


def test_a_file_renamed_into_a_watched_folder_is_reported_once(tmp_path: Path) -> None:
    watcher = moved_in()
    assert watcher is not None, "Linux has inotify"
    try:
        watcher.watch(str(tmp_path))
        (tmp_path / "written-in-place").write_text("not reported: only what is moved in")
        (tmp_path / ".pe-a-1-ff.end.tmp").write_text("{}")
        os.replace(tmp_path / ".pe-a-1-ff.end.tmp", tmp_path / ".pe-a-1-ff.end")
        assert select.select([watcher.fd], [], [], 5)[0], "no event"
        assert watcher.names() == [".pe-a-1-ff.end"]
        assert watcher.names() == []
    finally:
        watcher.close()
