"""Vector tiles kept warm: a disk cache that a change of the data retires exactly where it touched."""

from services.tiles.cache import Entry, TileCache, etag_of, fresh_sql, versioned

__all__ = ["Entry", "TileCache", "etag_of", "fresh_sql", "versioned"]
