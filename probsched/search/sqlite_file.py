"""A tuning database's file around SQLite: what a path holds, whether tuning can write there,
connections, and sqlite3's errors as one-line messages naming the file and the cause.

:func:`inspect` reads a file's first bytes itself, so a file that is not SQLite never reaches
a connection. :func:`check_writable` reads permissions before SQLite opens anything, so a
database that tuning cannot write is refused without ``-wal``/``-shm`` files left beside it
(the write transaction that :class:`~.database.Database` then tries is the check that does
not rest on permission bits). :func:`failure` turns any ``sqlite3.Error`` into a
:class:`~probsched.errors.DatabaseError`:

>>> print(failure("runs.db", sqlite3.DatabaseError("database disk image is malformed")))
runs.db: the database is damaged (database disk image is malformed); restore it from a copy \
or tune into another file (--db)
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from ..errors import DatabaseError

MISSING, EMPTY, SQLITE = "missing", "empty", "sqlite"
"""What :func:`inspect` finds at a path: no file, a file of 0 bytes, an SQLite file."""

_HEADER = b"SQLite format 3\x00"

_DAMAGED = ("the database is damaged", "restore it from a copy or tune into another file (--db)")
_LOCKED = ("the database is locked by another process",
           "wait for it to finish or use another file (--db)")
_CAUSES = {  # SQLite's primary result code -> (cause, what to do)
    "CORRUPT": _DAMAGED,
    "NOTADB": _DAMAGED,
    "READONLY": ("the database is read-only", "tuning writes every record it measures: make "
                 "the file writable or tune into another file (--db)"),
    "BUSY": _LOCKED,
    "LOCKED": _LOCKED,
    "FULL": ("the disk is full", "free some space"),
    "IOERR": ("reading or writing it failed", ""),
    "CANTOPEN": ("cannot open it", ""),
}
_BY_MESSAGE = {  # the same codes by SQLite's message, for an error that lacks its code
    "database disk image is malformed": "CORRUPT",
    "file is not a database": "NOTADB",
    "attempt to write a readonly database": "READONLY",
    "database is locked": "BUSY",
    "database or disk is full": "FULL",
    "disk I/O error": "IOERR",
    "unable to open database file": "CANTOPEN",
}


def inspect(path: str) -> str:
    """What is at ``path`` (:data:`MISSING`, :data:`EMPTY` or :data:`SQLITE`), read without
    SQLite; a :class:`DatabaseError` for a directory, a file that is not SQLite, or one that
    cannot be read."""
    try:
        with open(path, "rb") as f:
            head = f.read(len(_HEADER))
    except FileNotFoundError:
        return MISSING
    except IsADirectoryError:
        raise DatabaseError(f"{path}: a directory, not a probsched database") from None
    except OSError as exc:
        raise DatabaseError(f"{path}: cannot read it ({exc.strerror})") from None
    if not head:
        return EMPTY
    if head != _HEADER:
        raise DatabaseError(f"{path}: not a probsched database (not an SQLite file)")
    return SQLITE


def check_writable(path: str, state: str) -> None:
    """Raise unless this process may write ``path`` (in ``state``, from :func:`inspect`) and
    its directory, where SQLite creates the database and keeps its ``-wal`` and ``-shm``."""
    directory = _directory(path)
    if state == MISSING and not os.path.isdir(directory):
        raise DatabaseError(f"{path}: cannot create the database: no such directory "
                            f"{directory}")
    if state == MISSING and not os.access(directory, os.W_OK | os.X_OK):
        raise DatabaseError(f"{path}: cannot create the database: its directory {directory} "
                            "is not writable")
    if state != MISSING and not os.access(path, os.W_OK):
        cause, advice = _CAUSES["READONLY"]
        raise DatabaseError(f"{path}: {cause} (its permissions do not let this user write "
                            f"it); {advice}")
    if state != MISSING and not os.access(directory, os.W_OK | os.X_OK):
        raise _directory_error(path, "its permissions do not let this user write there")


def connect(path: str, *, readonly: bool, timeout_s: float) -> sqlite3.Connection:
    """A connection in autocommit mode (transactions are explicit); ``readonly``: by the URI
    ``mode=ro``, which cannot create, convert or write the file."""
    if readonly:
        uri = Path(path).absolute().as_uri() + "?mode=ro"
        return sqlite3.connect(uri, uri=True, timeout=timeout_s, isolation_level=None)
    return sqlite3.connect(path, timeout=timeout_s, isolation_level=None)


def failure(path: str, exc: sqlite3.Error) -> DatabaseError:
    """``exc``, raised by SQLite on the database at ``path``, as one line: the file, the cause,
    SQLite's own words, and what to do."""
    detail = " ".join(str(exc).split())
    name = getattr(exc, "sqlite_errorname", None) or "SQLITE_" + _BY_MESSAGE.get(detail, "")
    code = name.removeprefix("SQLITE_").split("_")[0]
    directory_writable = os.access(_directory(path), os.W_OK | os.X_OK)
    if code == "CANTOPEN" and not directory_writable and not os.path.exists(path):
        return DatabaseError(f"{path}: cannot create the database: its directory "
                             f"{_directory(path)} is not writable ({detail})")
    if name == "SQLITE_READONLY_DIRECTORY" or (code == "CANTOPEN" and not directory_writable):
        return _directory_error(path, detail)
    cause, advice = _CAUSES.get(code, ("SQLite failed", ""))
    return DatabaseError(f"{path}: {cause} ({detail})" + (f"; {advice}" if advice else ""))


def damaged(path: str, detail: str) -> DatabaseError:
    """The error for a database that SQLite reads but finds damaged (``detail``: why)."""
    cause, advice = _DAMAGED
    return DatabaseError(f"{path}: {cause} ({' '.join(detail.split())}); {advice}")


def _directory(path: str) -> str:
    return os.path.dirname(os.path.abspath(path))


def _directory_error(path: str, detail: str) -> DatabaseError:
    name = os.path.basename(path)
    return DatabaseError(
        f"{path}: its directory {_directory(path)} is not writable, and SQLite keeps {name}-wal "
        f"and {name}-shm beside a database in WAL mode ({detail}); make the directory writable "
        "or copy the database to one that is")


__all__ = ["EMPTY", "MISSING", "SQLITE", "check_writable", "connect", "damaged", "failure",
           "inspect"]
