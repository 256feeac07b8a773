"""Safe output: never half-written, never overwritten unless asked."""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path

from ..errors import UserError


def check_output_dir(path: Path) -> None:
    """Raise :class:`UserError` unless the directory that will hold ``path`` exists and is writable."""
    parent = Path(path).resolve().parent
    if not parent.exists():
        raise UserError(f"output directory '{parent}' does not exist: create it or choose "
                        "another path with -o")
    if not parent.is_dir():
        raise UserError(f"'{parent}' is not a directory: choose another output path with -o")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise UserError(f"output directory '{parent}' is not writable: choose another path with -o")


class AtomicOutput:
    """A context manager giving a temporary path that is renamed to ``path`` on success.

    On an exception the temporary file (or directory) is removed, so an interrupted run
    leaves nothing half-written. ``path`` must not exist unless ``overwrite`` is true.

    Example::

        with AtomicOutput(Path("out.mp4")) as tmp:
            write(tmp)
    """

    def __init__(self, path: Path, overwrite: bool = False, is_dir: bool = False):
        self.path = Path(path)
        self.overwrite = overwrite
        self.is_dir = is_dir
        check_output_dir(self.path)
        if self.path.exists() and not overwrite:
            raise UserError(f"'{self.path}' already exists: pass --overwrite to replace it, "
                            "or choose another name with -o")
        self.tmp = self.path.with_name(f".{self.path.stem}.partial-{os.getpid()}{self.path.suffix}")

    def __enter__(self) -> Path:
        if self.is_dir:
            self.tmp.mkdir()
        return self.tmp

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc_type is None:
            if self.path.is_dir() and self.overwrite:
                shutil.rmtree(self.path)
            os.replace(self.tmp, self.path)
            return False
        if self.tmp.is_dir():
            shutil.rmtree(self.tmp, ignore_errors=True)
        elif self.tmp.exists():
            self.tmp.unlink()
        if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
            raise UserError(f"no space left on the device while writing '{self.path}': free "
                            "some space or write elsewhere with -o") from None
        return False
