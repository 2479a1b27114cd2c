"""Filesystem object store: keys are relative paths under a root folder."""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

TEMP_MARK = ".tmp-"


class FilesystemStore:
    """ObjectStore over a local folder; writes are atomic (temp file + rename/link)."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)

    def _path(self, key: str) -> Path:
        if key.startswith("/") or ".." in key.split("/"):
            raise ValueError(f"object key {key!r} must be relative without '..'")
        return self.root / key

    def _write_temp(self, path: Path, data: bytes) -> Path:
        folder = path.parent
        try:
            os.mkdir(folder)  # usually a new point_index= folder whose parent exists
        except FileExistsError:
            pass
        except FileNotFoundError:
            folder.mkdir(parents=True, exist_ok=True)
        temp = folder / f"{TEMP_MARK}{path.name}.{os.getpid()}.{secrets.token_hex(4)}"
        # No fsync: the rename makes a killed process leave either the old or the new
        # file, which is the failure we design for; every write is repeatable anyway.
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # umask applies
        try:
            view = memoryview(data)
            while view:  # a regular file takes it all at once, but the API may not
                view = view[os.write(fd, view) :]
        except BaseException:
            os.close(fd)
            temp.unlink(missing_ok=True)  # e.g. disk full: leave no half-written temp file
            raise
        os.close(fd)
        return temp

    def put(self, key: str, data: bytes) -> None:
        path = self._path(key)
        os.replace(self._write_temp(path, data), path)

    def put_if_absent(self, key: str, data: bytes) -> bool:
        path = self._path(key)
        if path.exists():  # no temp file needed to learn that (works on a read-only folder)
            return False
        temp = self._write_temp(path, data)
        try:
            os.link(temp, path)  # atomic create-if-absent
        except FileExistsError:
            return False
        finally:
            temp.unlink()
        return True

    def get(self, key: str) -> bytes | None:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            return None

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def list_keys(self, prefix: str) -> Iterator[str]:
        folder, _, _ = prefix.rpartition("/")
        start = self.root / folder if folder else self.root
        if not start.is_dir():
            return
        found: list[str] = []
        for dirpath, _dirs, files in os.walk(start):
            rel_dir = Path(dirpath).relative_to(self.root).as_posix()
            for name in files:
                if name.startswith(TEMP_MARK):
                    continue
                key = name if rel_dir == "." else f"{rel_dir}/{name}"
                if key.startswith(prefix):
                    found.append(key)
        yield from sorted(found)

    def remove_empty_folders(self, prefix: str) -> None:
        """Remove the folder ``prefix`` names and every empty folder below it, bottom-up.

        Deleting objects leaves their folders behind; a folder holding anything stays.
        """
        top = self._path(prefix.rstrip("/"))
        if not top.is_dir() or top == self.root:
            return
        for dirpath, _dirs, _files in os.walk(top, topdown=False):
            with contextlib.suppress(OSError):  # not empty (or already gone): keep it
                os.rmdir(dirpath)
