"""Errors the ETL raises; each message names the file, row, field or setting at fault."""


class InputError(ValueError):
    """The file or the call is wrong as a whole (unreadable file, unknown layer, bad mapping)."""


class LoadFailed(RuntimeError):
    """The database refused the load; nothing was written."""
