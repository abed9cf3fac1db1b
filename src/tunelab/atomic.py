"""Atomic outputs: a file or folder is whole or as it was, never half-written.

Every stage writes through here (a killed stage leaves only a hidden temporary name beside
its output, never a truncated output that DVC would cache), and files get the user's umask
(``mkstemp`` alone makes them 0600).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextmanager
def atomic_file(path: Path, suffix: str = ".tmp") -> Iterator[Path]:
    """Yield a unique hidden temporary path beside ``path`` to write; on success it
    replaces ``path`` (safe with two writers at once), on error it is removed.

    ``suffix`` ends the temporary name: writers that choose a format by extension
    (matplotlib, ``torch.save`` does not care) need the real one, e.g. ``".tmp.png"``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_bytes_atomic(path: Path, data: bytes) -> None:
    with atomic_file(path) as tmp:
        tmp.write_bytes(data)


def write_text_atomic(path: Path, text: str) -> None:
    """UTF-8 with ``\\n`` line ends on every platform (outputs hash the same everywhere)."""
    with atomic_file(path) as tmp, open(tmp, "w", encoding="utf-8", newline="\n") as f:
        f.write(text)


def write_json_atomic(path: Path, data: dict | list) -> None:
    write_text_atomic(path, json.dumps(data, indent=2, sort_keys=False) + "\n")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def remove_stale_temps(final: Path) -> list[Path]:
    """Remove the temp folders that killed writers of ``final`` left beside it
    (``.{name}.{pid}.XXXX`` whose process is gone); a live writer's is kept."""
    removed = []
    for tmp in Path(final).parent.glob(f".{Path(final).name}.*"):
        pid = tmp.name[len(Path(final).name) + 2:].split(".", 1)[0]
        if tmp.is_dir() and pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(tmp, ignore_errors=True)
            removed.append(tmp)
    return removed


@contextmanager
def atomic_dir(final: Path) -> Iterator[Path]:
    """Yield a temp folder beside ``final``; on success it replaces ``final`` whole.

    On any error the temp folder is removed and ``final`` is left as it was; one left by a
    killed run (SIGKILL unwinds nothing) is removed by the next run writing ``final``.
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(final)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.{os.getpid()}.", dir=final.parent))
    tmp.chmod(0o777 & ~_umask())  # mkdtemp makes 0700; outputs should read like any folder
    try:
        yield tmp
        old = final.with_name(f".{final.name}.old")
        if old.exists():
            shutil.rmtree(old)
        if final.exists():
            final.rename(old)
        tmp.rename(final)
        if old.exists():
            shutil.rmtree(old)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
