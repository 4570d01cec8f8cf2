"""The data directory is private to the account that runs faceleads: directory 0700, every file 0600.

It holds the database (users, cases, the audit log), its WAL/SHM files, the keystore, the master key file, the
encrypted store, job error reports, caches and locks. None of it may be readable by another local account, so
every entry point (``faceleads`` commands, ``faceleads serve``, the web app, bulk-enrolment workers) calls
:func:`secure_data_dir` before it touches the directory:

- the process umask becomes 0o077, so every file created afterwards — SQLite's database, WAL and SHM files,
  reports, caches, backups written elsewhere — is private from the start, not fixed afterwards;
- the directory itself is made 0700, and group/other permission bits are removed from every existing file and
  folder in it (an installation made before this rule); the encrypted store's shard tree is skipped for speed
  (its files have always been created 0600 and its folders 0700) but ``faceleads selfcheck`` checks it too;
- interrupted backups are cleaned up (:func:`register_partial`).

Symbolic links are never followed or changed.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
import shutil
import stat
from collections.abc import Iterator
from pathlib import Path

from faceleads.config import Settings

PRIVATE_UMASK = 0o077
_OPEN_BITS = 0o077  # any permission for group or others
PARTIALS_DIR = ".partials"  # registrations of work folders in progress (backups), under the data directory
PARTIAL_MARKER = ".faceleads-partial"  # inside a work folder: proof that faceleads made it (safe to delete)
_SKIP_INTERIOR = ("store",)  # large trees whose files are created private by construction


def private_umask() -> None:
    """Make every file this process creates private to its owner (umask 0o077)."""
    os.umask(PRIVATE_UMASK)


def _walk(root: Path, *, full: bool) -> Iterator[Path]:
    """Every file and folder under ``root`` (not following links), optionally skipping the store's interior."""
    for current, dirs, files in os.walk(root, followlinks=False):
        here = Path(current)
        if not full and here == root:
            dirs[:] = [d for d in dirs if d not in _SKIP_INTERIOR]
            for skipped in _SKIP_INTERIOR:
                if (here / skipped).is_dir():
                    yield here / skipped
        for name in (*dirs, *files):
            yield here / name


def open_paths(root: Path, *, full: bool = True) -> list[Path]:
    """Files and folders under ``root`` (``root`` included) that group or others may access; links are ignored."""
    found = []
    for path in (root, *_walk(root, full=full)):
        try:
            info = path.lstat()
        except FileNotFoundError:
            continue
        if stat.S_ISLNK(info.st_mode):
            continue
        if info.st_mode & _OPEN_BITS:
            found.append(path)
    return found


def secure_data_dir(settings: Settings) -> list[Path]:
    """Set the private umask, create or tighten the data directory, and strip group/other access from what is in
    it; clean up interrupted backups. Returns the paths whose mode was changed (idempotent, cheap when clean)."""
    private_umask()
    root = settings.data_dir
    root.mkdir(parents=True, exist_ok=True, mode=0o700)
    fixed = []
    for path in open_paths(root, full=False):
        with contextlib.suppress(FileNotFoundError, PermissionError):
            mode = stat.S_IMODE(path.lstat().st_mode)
            path.chmod(mode & ~_OPEN_BITS)
            fixed.append(path)
    cleanup_partials(settings)
    return fixed


def check_data_dir(settings: Settings) -> list[str]:
    """Problems with the data directory's privacy, for ``faceleads selfcheck`` (empty: all private)."""
    problems = []
    current = os.umask(PRIVATE_UMASK)
    os.umask(current)
    if current & _OPEN_BITS != _OPEN_BITS:
        problems.append(f"process umask is {current:04o}; new files would be readable by others (want 0077)")
    root = settings.data_dir
    if root.exists():
        for path in open_paths(root, full=True):
            mode = stat.S_IMODE(path.lstat().st_mode)
            problems.append(f"{path} is mode {mode:04o}: group/others may access it")
    return problems


# --- work folders in progress (interrupted backups) ------------------------------------------------------------


@contextlib.contextmanager
def register_partial(settings: Settings, work: Path) -> Iterator[None]:
    """Record ``work`` (a hidden folder being filled, e.g. a backup before its final rename) while the block runs.

    The registration lives under the data directory and is locked (``flock``) by this process: if the process is
    killed — even by ``kill -9`` — the kernel drops the lock, and the next start (:func:`cleanup_partials`) deletes
    the half-written folder, which may hold a full copy of the database. ``work`` gets a marker so that only
    folders faceleads made are ever deleted.
    """
    registry = settings.data_dir / PARTIALS_DIR
    registry.mkdir(parents=True, exist_ok=True, mode=0o700)
    entry = registry / f"{secrets.token_hex(8)}.json"
    fd = os.open(entry, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.write(fd, json.dumps({"path": str(work), "pid": os.getpid()}).encode("utf-8"))
        os.fsync(fd)
        work.mkdir(mode=0o700)
        (work / PARTIAL_MARKER).touch(mode=0o600)
        yield
    finally:
        with contextlib.suppress(FileNotFoundError):
            entry.unlink()
        os.close(fd)


def cleanup_partials(settings: Settings) -> list[Path]:
    """Delete work folders left by processes that died (their registration is no longer locked); returns them."""
    registry = settings.data_dir / PARTIALS_DIR
    removed: list[Path] = []
    if not registry.is_dir():
        return removed
    for entry in sorted(registry.glob("*.json")):
        try:
            fd = os.open(entry, os.O_RDWR | os.O_CLOEXEC)
        except FileNotFoundError:
            continue
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # still running
            try:
                work = Path(json.loads(entry.read_text(encoding="utf-8"))["path"])
            except (ValueError, KeyError, TypeError, OSError):
                work = None
            if work is not None and (work / PARTIAL_MARKER).is_file() and not work.is_symlink():
                shutil.rmtree(work, ignore_errors=True)
                removed.append(work)
            with contextlib.suppress(FileNotFoundError):
                entry.unlink()
        finally:
            os.close(fd)
    return removed
