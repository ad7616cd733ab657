"""The embedded database's file: its integrity check, the lock that says it is open, backup and restore.

Every process that opens the database (a server, a CLI command) holds a shared
``flock`` on ``{database}.lock`` for as long as it has it open; a restore takes
it exclusively, so it refuses while anything has the database open, and nothing
opens the database while a restore runs. Serving processes take turns to write
through ``{database}.writer`` (:class:`WriterLock`). A backup uses SQLite's online backup
API: a consistent copy, taken while the server runs, as one self-contained file.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from billportal.core.errors import DatabaseDamaged, StorageUnavailable

RESTORE_HINT = "restore a backup with `billportal db restore FILE` (docs/deploy.md#backups)"


def lock_path(database: Path) -> Path:
    return database.with_name(database.name + ".lock")


def _open_lock(database: Path) -> IO[bytes]:
    database.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock_path(database), os.O_RDWR | os.O_CREAT, 0o600)
    return os.fdopen(fd, "r+b")


class WriterLock:
    """An exclusive ``flock`` on ``{database}.writer``, held for each write transaction of a serving process.

    SQLite lets one process write at a time; one that finds the database locked sleeps in
    its busy handler (1, 2, 5, 10 ... ms) and tries again. A server writes on its event
    loop, so with ``--workers 2`` each such sleep stopped every request of that worker.
    Holding this lock first, a writer takes SQLite's lock at once. The sign-in path's group
    commit takes it with :meth:`acquire_now` and, finding it taken (another worker's commit,
    or the checkpointer starting the log over), tries again a millisecond later while the
    event loop serves other requests; the other writes wait on it with :meth:`held` (a
    transaction takes well under a millisecond). Uncontended, it costs two system calls a
    transaction.
    """

    def __init__(self, database: Path) -> None:
        database.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(database.with_name(database.name + ".writer"), os.O_RDWR | os.O_CREAT, 0o600)
        self._file = os.fdopen(fd, "r+b")

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        fcntl.flock(self._file, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(self._file, fcntl.LOCK_UN)

    def acquire_now(self) -> bool:
        """Take the lock if it is free, without waiting; True if taken (then :meth:`release` it)."""
        try:
            fcntl.flock(self._file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def release(self) -> None:
        fcntl.flock(self._file, fcntl.LOCK_UN)

    def close(self) -> None:
        self._file.close()


def hold_open(database: Path) -> IO[bytes]:
    """Say "this process has the database open" until the returned file is closed."""
    handle = _open_lock(database)
    try:
        fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise StorageUnavailable("the database is being restored; start again when the restore has finished") from None
    return handle


def check_integrity(conn: sqlite3.Connection, database: Path, *, thorough: bool = False) -> None:
    """Raise DatabaseDamaged unless SQLite's quick (or full) integrity check says ok."""
    pragma = "PRAGMA integrity_check(1)" if thorough else "PRAGMA quick_check(1)"
    try:
        result = [row[0] for row in conn.execute(pragma).fetchall()]
    except sqlite3.DatabaseError as exc:
        raise DatabaseDamaged(f"{database} is not a readable SQLite database ({exc}); {RESTORE_HINT}") from None
    if result != ["ok"]:
        problem = " ".join(str(result[0]).split())[:160]  # one line, however SQLite words it
        raise DatabaseDamaged(f"{database} is damaged ({problem}); {RESTORE_HINT}")


def backup(database: Path, target: Path) -> int:
    """Copy the database, consistently, to ``target`` (a new file, mode 0600); its size in bytes."""
    if not database.exists():
        raise FileNotFoundError(f"there is no database at {database}")
    if target.exists():
        raise FileExistsError(f"{target} already exists; choose a new file name")
    partial = target.with_name(f".{target.name}.partial-{os.getpid()}")
    source = sqlite3.connect(database, isolation_level=None)
    try:
        source.execute("PRAGMA busy_timeout=5000")
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.close(fd)
        copy = sqlite3.connect(partial, isolation_level=None)
        try:
            source.backup(copy)
            copy.execute("PRAGMA journal_mode=DELETE")  # one self-contained file
            check_integrity(copy, target, thorough=True)
        finally:
            copy.close()
        _fsync(partial)
        os.replace(partial, target)
    finally:
        source.close()
        with contextlib.suppress(FileNotFoundError):
            partial.unlink()
    return target.stat().st_size


def restore(database: Path, source: Path) -> Path | None:
    """Replace the database by the backup at ``source``; where the replaced one was kept (None: there was none).

    Refuses (BlockingIOError) while any process has the database open. The backup
    is copied and checked in full before anything is touched; the replaced
    database is renamed aside with its ``-wal``, and its ``-shm`` removed, so no
    stale write-ahead log is ever applied to the restored file.
    """
    if not source.is_file():
        raise FileNotFoundError(f"there is no backup at {source}")
    with _open_lock(database) as lock:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)  # BlockingIOError: something has it open
        staged = database.with_name(f".{database.name}.restoring-{os.getpid()}")
        try:
            _stage(source, staged)
            kept = _set_aside(database)
            os.replace(staged, database)
            _fsync(database.parent)
        finally:
            with contextlib.suppress(FileNotFoundError):
                staged.unlink()
    return kept


def _stage(source: Path, staged: Path) -> None:
    """Copy the backup to ``staged`` and check it: a whole, healthy billportal database."""
    fd = os.open(staged, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.close(fd)
    # immutable: read the backup as it is, taking no lock and writing nothing beside it.
    reader = sqlite3.connect(f"file:{source}?mode=ro&immutable=1", uri=True, isolation_level=None)
    copy = sqlite3.connect(staged, isolation_level=None)
    try:
        try:
            reader.backup(copy)
        except sqlite3.DatabaseError as exc:
            raise DatabaseDamaged(f"{source} is not a readable SQLite database ({exc})") from None
        try:
            copy.execute("PRAGMA journal_mode=DELETE")  # reads the schema: a damaged one fails here
        except sqlite3.DatabaseError as exc:
            raise DatabaseDamaged(f"{source} is damaged ({exc})") from None
        check_integrity(copy, source, thorough=True)
        try:
            copy.execute("SELECT version_num FROM alembic_version").fetchone()
        except sqlite3.DatabaseError:
            raise DatabaseDamaged(f"{source} is not a billportal database") from None
    finally:
        copy.close()
        reader.close()
    _fsync(staged)


def _set_aside(database: Path) -> Path | None:
    """Rename the current database (and its -wal) aside; drop its -shm. Where it went, if anywhere."""
    shm = database.with_name(database.name + "-shm")
    with contextlib.suppress(FileNotFoundError):
        shm.unlink()
    wal = database.with_name(database.name + "-wal")
    if not database.exists():
        with contextlib.suppress(FileNotFoundError):
            wal.unlink()
        return None
    kept = database.with_name(f"{database.name}.replaced-{time.strftime('%Y%m%dT%H%M%S')}")
    os.replace(database, kept)
    if wal.exists():
        os.replace(wal, kept.with_name(kept.name + "-wal"))
    return kept


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
