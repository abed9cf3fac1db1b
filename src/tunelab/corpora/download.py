"""Checksummed fetching: pinned URLs, a local mirror fallback, manifests, atomic outputs."""

from __future__ import annotations

import hashlib
import os
import shutil
import urllib.request
from collections.abc import Iterable
from pathlib import Path, PurePosixPath

MIRROR_ENV = "TUNELAB_DATA_MIRROR"


class DataUnavailableError(RuntimeError):
    """Neither the upstream URL nor a mirror could supply the data."""


class ChecksumMismatchError(RuntimeError):
    """Bytes on disk differ from the pinned sha256."""


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def verify_sha256(path: Path, expected: str, source: str | Path | None = None) -> None:
    """Check ``path`` against its pinned digest; the error names ``source`` (the mirror file
    or URL it was copied from), which is what the user can fix, not a temporary copy."""
    got = sha256_file(path)
    if got != expected:
        raise ChecksumMismatchError(
            f"{source or path}: sha256 {got} does not match the pinned {expected}; the download or "
            "mirror copy is corrupt or a different version - re-fetch it"
        )


def verify_archive(path: Path, size: int, sha256: str, source: str | Path) -> None:
    """Check a downloaded or mirrored archive against its pinned size, then its sha256
    (the size fails fast on a truncated download); errors name ``source``."""
    got = path.stat().st_size
    if got != size:
        raise ChecksumMismatchError(
            f"{source}: {got} bytes, not the pinned {size}; the download or mirror copy is "
            "truncated or a different version - re-fetch it")
    verify_sha256(path, sha256, source)


def safe_member_path(dest: Path, name: str, root: str) -> Path | None:
    """Where an archive member named ``root/...`` goes under ``dest`` (``root/`` dropped);
    None for members outside ``root/`` or names that would escape ``dest``."""
    if not name.startswith(f"{root}/"):
        return None
    rel = PurePosixPath(name[len(root) + 1:])
    if not rel.parts or rel.is_absolute() or ".." in rel.parts:
        return None
    return dest.joinpath(*rel.parts)


def mirror_root(configured: str | None) -> Path | None:
    """The mirror folder: the params key if set, else ``$TUNELAB_DATA_MIRROR``."""
    value = configured or os.environ.get(MIRROR_ENV)
    return Path(value).expanduser() if value else None


def fetch_pinned(url: str, mirror_rel: str, mirror: Path | None, dest: Path,
                 timeout: float = 20.0) -> str:
    """Copy a file from the mirror (preferred: offline, fast) or download it from ``url``.

    Returns where it came from. Raises DataUnavailableError naming both places.
    """
    if mirror is not None and (mirror / mirror_rel).is_file():
        shutil.copyfile(mirror / mirror_rel, dest)
        return str(mirror / mirror_rel)
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r, open(dest, "wb") as f:
            shutil.copyfileobj(r, f)
        return url
    except OSError as e:
        where = f"{mirror / mirror_rel}" if mirror else f"no mirror (set {MIRROR_ENV} or corpus.mirror)"
        raise DataUnavailableError(
            f"cannot fetch {url} ({e.__class__.__name__}) and {where} is not there: connect "
            f"to the network or point {MIRROR_ENV}/corpus.mirror at a data mirror"
        ) from e


def file_digests(root: Path, files: Iterable[Path] | None = None) -> dict[str, str]:
    """sha256 of every file under ``root`` (relative posix path -> digest), sorted."""
    files = files if files is not None else (p for p in root.rglob("*") if p.is_file())
    return dict(sorted((p.relative_to(root).as_posix(), sha256_file(p)) for p in files))


def digest_of_digests(digests: dict[str, str]) -> str:
    """One sha256 over ``sha256sum``-style lines, sorted by path: pins a whole file set."""
    text = "".join(f"{d}  {p}\n" for p, d in sorted(digests.items()))
    return hashlib.sha256(text.encode()).hexdigest()
