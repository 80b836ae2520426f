"""A disk cache of vector tiles that stays exact: a change of the data retires exactly the tiles it touched.

Each cached tile keeps the epoch token and the database snapshot it was made in (``riskatlas.tile_version()``,
read in the same statement as the tile, so the two agree).  Every write of a layer notes where it touched
(migration 0015: the z14 cells of changed points, the envelopes of changed lines and areas).  A cached tile
is served only after ``riskatlas.tile_fresh()`` says no change of its layers that its snapshot did not see
lies within its envelope and buffer: one indexed query, far cheaper than making the tile.  So a load, an
upload or an edit shows at once, and tiles elsewhere stay warm.  A restored database draws a new epoch, so
nothing cached before counts.

Files live under ``<state_dir>/tile-cache/<database>/<variant>/<z>/<x>/<y>.tile`` and are written atomically
(several workers may share the folder).  The folder is kept under ``max_bytes`` by removing the least
recently written tiles.  ``variant`` names what else decides the tile's bytes (layers, the fields the role
sees, the filter, aggregation, the code that makes tiles).
"""

from __future__ import annotations

import hashlib
import os
import struct
import tempfile
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path

from psycopg import sql

from layers.catalogue import SCHEMA_SQL
from services.query.clauses import Clause

MAGIC = b"RATILE1\n"
_HEADER = struct.Struct(">16sH16s")  # token, snapshot length, blake2b-128 of the data


@dataclass(frozen=True)
class Entry:
    """A cached tile: its bytes, their ETag, and the epoch token and snapshot it was made in."""

    data: bytes
    etag: str
    token: uuid.UUID
    snapshot: str


def etag_of(data: bytes) -> str:
    """The strong ETag of a tile's bytes."""
    return '"' + hashlib.blake2b(data, digest_size=16).hexdigest() + '"'


class TileCache:
    """Tiles on disk under ``folder``, at most about ``max_bytes`` (0: nothing is cached)."""

    def __init__(self, folder: Path, max_bytes: int) -> None:
        self.folder = folder
        self.max_bytes = max_bytes
        self._written = 0
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return self.max_bytes > 0

    @staticmethod
    def variant(*parts: object) -> str:
        """A short name for everything besides z/x/y that decides a tile's bytes."""
        return hashlib.blake2b(repr(parts).encode("utf-8"), digest_size=12).hexdigest()

    def path(self, variant: str, z: int, x: int, y: int) -> Path:
        return self.folder / variant / str(z) / str(x) / f"{y}.tile"

    def lookup(self, variant: str, z: int, x: int, y: int) -> Entry | None:
        """The cached tile, if one was written (whether it is still good is :func:`fresh_sql`'s question)."""
        if not self.enabled:
            return None
        try:
            raw = self.path(variant, z, x, y).read_bytes()
        except OSError:
            return None
        if not raw.startswith(MAGIC) or len(raw) < len(MAGIC) + _HEADER.size:
            return None
        token, n, digest = _HEADER.unpack_from(raw, len(MAGIC))
        start = len(MAGIC) + _HEADER.size
        snapshot = raw[start:start + n].decode("ascii", "replace")
        data = raw[start + n:]
        if hashlib.blake2b(data, digest_size=16).digest() != digest:
            return None  # a torn or damaged file: make the tile again
        return Entry(data, '"' + digest.hex() + '"', uuid.UUID(bytes=token), snapshot)

    def store(self, variant: str, z: int, x: int, y: int, data: bytes, token: uuid.UUID, snapshot: str) -> str:
        """Keep a tile made at (``token``, ``snapshot``); returns its ETag.  Never raises for the disk."""
        digest = hashlib.blake2b(data, digest_size=16).digest()
        etag = '"' + digest.hex() + '"'
        if not self.enabled:
            return etag
        snap = snapshot.encode("ascii")
        target = self.path(variant, z, x, y)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
            with os.fdopen(fd, "wb") as f:
                f.write(MAGIC + _HEADER.pack(token.bytes, len(snap), digest) + snap + data)
            os.replace(tmp, target)
        except OSError:
            return etag  # a full or read-only disk costs speed, not answers
        self._note_written(len(data) + len(snap) + 64)
        return etag

    def clear(self) -> int:
        """Remove every cached tile; returns how many."""
        n = 0
        for p in self._files():
            try:
                p.unlink()
                n += 1
            except OSError:
                pass
        return n

    def _files(self) -> list[Path]:
        return [Path(root) / f for root, _, files in os.walk(self.folder) for f in files if f.endswith(".tile")]

    def _note_written(self, n: int) -> None:
        with self._lock:
            self._written += n
            if self._written < max(self.max_bytes // 10, 1):
                return
            self._written = 0
        self.trim()

    def trim(self) -> None:
        """Remove the least recently written tiles until the folder holds under 80 % of ``max_bytes``."""
        entries = []
        total = 0
        for p in self._files():
            try:
                st = p.stat()
            except OSError:
                continue
            entries.append((st.st_mtime, st.st_size, p))
            total += st.st_size
        if total <= self.max_bytes:
            return
        entries.sort()
        for _, size, p in entries:
            if total <= self.max_bytes * 0.8:
                break
            try:
                p.unlink()
                total -= size
            except OSError:
                pass


def versioned(tile: Clause) -> Clause:
    """``tile`` (a one-value SELECT) with the epoch token and snapshot it is made in, as one statement."""
    return Clause(sql.SQL("SELECT ({tile}), v.token, v.snapshot::text FROM {s}.tile_version() v").format(
        tile=tile.text, s=SCHEMA_SQL), tile.params)


def fresh_sql(entry: Entry, layers: list[str], z: int, x: int, y: int, margin: float) -> Clause:
    """Whether ``entry`` (a tile of ``layers`` at z/x/y, with a buffer of ``margin`` of its width) is good."""
    return Clause(sql.SQL("SELECT {}.tile_fresh(%s, %s::pg_snapshot, %s, %s, %s, %s, %s)").format(SCHEMA_SQL),
                  (entry.token, entry.snapshot, layers, z, x, y, margin))
