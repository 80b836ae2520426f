"""Parse an upload in a separate process that cannot read the state folder.

The parent copies the file into a fresh scratch folder and starts ``python -m etl.parse_child``
there: as an unprivileged user (``ReadSettings.sandbox_user``, when running as root) without
network (a new network namespace, when the system allows it), with an empty environment, and
under CPU, memory, file-size and wall-clock budgets.  The child hands back the attribute table,
WKB geometry and CRS as an Arrow IPC stream on its stdout; a child stopped for time or memory
becomes an ``InputError`` naming the file and the budget.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pyarrow as pa
import pyarrow.ipc

from etl.errors import InputError
from etl.formats import SUFFIX_KIND, sidecar
from etl.limits import MiB
from etl.parse import HARDENING, Parsed
from etl.settings import ReadSettings

log = logging.getLogger(__name__)

EXIT_INPUT, EXIT_MEMORY = 3, 4
META_KEY = b"riskatlas"
FALLBACK_ID = 65534
FILE_SIZE_MARGIN = 64 * MiB


def parse_in_sandbox(path: Path, settings: ReadSettings, *, source_layer: str | None = None,
                     encoding: str | None = None) -> Parsed:
    """Parse ``path`` in the sandboxed child and rebuild what it sends back."""
    import pyogrio

    name = path.name
    with scratch_folder(settings) as scratch:
        target = _copy_in(path, scratch / "input")
        request = {"path": str(target), "name": name, "scratch": str(scratch / "work"),
                   "source_layer": source_layer, "encoding": encoding, "limits": settings.limits().to_dict(),
                   "drivers": sorted(pyogrio.list_drivers())}
        (scratch / "work").mkdir()
        _hand_over(scratch, settings)
        try:
            done = run_child(["-m", "etl.parse_child", json.dumps(request)], scratch, settings)
        except subprocess.TimeoutExpired:
            raise InputError(f"file {name}: parsing exceeded the time budget of {settings.parse_seconds:g} s") from None
        return _outcome(done, name, scratch, settings)


def run_child(args: list[str], scratch: Path, settings: ReadSettings) -> subprocess.CompletedProcess[bytes]:
    """Run ``python <args>`` as the sandbox user in ``scratch`` with an empty environment.

    Raises ``subprocess.TimeoutExpired`` (after killing the child) past ``settings.parse_seconds``.
    """
    prefix, drop = _privileges(settings)
    env = {"PATH": "/usr/bin:/bin", "HOME": str(scratch), "TMPDIR": str(scratch), "LANG": "C.UTF-8",
           "LC_ALL": "C.UTF-8", "MALLOC_ARENA_MAX": "2", "GDAL_DRIVER_PATH": "disable", **HARDENING}
    command = [*prefix, sys.executable, "-I", "-B", *args]
    proc = subprocess.Popen(command, cwd=scratch, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, start_new_session=True, close_fds=True, **drop)
    try:
        out, err = proc.communicate(timeout=settings.parse_seconds)
    except subprocess.TimeoutExpired:
        _kill(proc)
        proc.communicate()
        raise
    except BaseException:
        _kill(proc)
        raise
    return subprocess.CompletedProcess(command, proc.returncode, out, err)


@contextmanager
def scratch_folder(settings: ReadSettings) -> Iterator[Path]:
    """A private temporary folder, removed afterwards whatever the child left in it."""
    folder = Path(tempfile.mkdtemp(prefix="riskatlas-parse-", dir=settings.scratch_dir))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _outcome(done: subprocess.CompletedProcess[bytes], name: str, scratch: Path, settings: ReadSettings) -> Parsed:
    code = done.returncode
    try:
        if code == 0:
            return _rebuild(done.stdout)
        if code == EXIT_INPUT:
            message = str(json.loads(done.stdout)["error"])
    except (ValueError, KeyError, TypeError, pa.ArrowException):
        code = -1  # the child's reply is not what it should be: treat as a failed parse
    if code == EXIT_INPUT:
        raise InputError(message.replace(str(scratch.resolve()), "").replace(str(scratch), ""))
    if code == EXIT_MEMORY:
        raise InputError(f"file {name}: parsing exceeded the memory budget of {settings.parse_memory_bytes / MiB:g} MiB")
    if code in (-signal.SIGXCPU, -signal.SIGKILL):
        raise InputError(f"file {name}: parsing exceeded the time budget of {settings.parse_cpu_seconds} s of CPU")
    if code == -signal.SIGXFSZ:
        raise InputError(f"file {name}: unpacks to more than the limit of {settings.max_unpacked_bytes} bytes")
    tail = done.stderr[-2000:].decode("utf-8", "replace").replace(str(scratch), "<scratch>")
    log.warning("parse child for %s stopped with status %s: %s", name, code, tail)
    raise InputError(f"file {name}: could not be parsed (the parser stopped unexpectedly)")


def _rebuild(stream: bytes) -> Parsed:
    table = pa.ipc.open_stream(stream).read_all()
    metadata = dict(table.schema.metadata or {})
    meta = json.loads(metadata.pop(META_KEY))
    table = table.replace_schema_metadata(metadata)
    return Parsed(table, meta["kind"], meta.get("geometry"), meta.get("crs"), meta.get("encoding"))


def _copy_in(path: Path, inbox: Path) -> Path:
    """Copy the upload (and a shapefile's sidecars) into the scratch folder under a safe name."""
    inbox.mkdir()
    name = "".join(c if c.isprintable() and c not in "/\\" else "_" for c in path.name).lstrip(".-") or "upload"
    target = inbox / name
    shutil.copyfile(path, target)
    if SUFFIX_KIND.get(path.suffix.lower()) == "shp":
        for suffix in (".shx", ".dbf", ".prj", ".cpg"):
            part = sidecar(path, suffix)
            if part is not None:
                shutil.copyfile(part, target.with_suffix(suffix))
    return target


def _hand_over(scratch: Path, settings: ReadSettings) -> None:
    """Give the scratch folder to the sandbox user (when running as root); nobody else may enter."""
    os.chmod(scratch, 0o700)
    if os.geteuid() != 0:
        return
    uid, gid = _ids(settings.sandbox_user)
    for folder, _dirs, files in os.walk(scratch):
        os.chown(folder, uid, gid)
        for f in files:
            os.chown(os.path.join(folder, f), uid, gid)


def _privileges(settings: ReadSettings) -> tuple[list[str], dict]:
    """The command prefix (or Popen arguments) that drop root and the network, when running as root."""
    if os.geteuid() != 0:
        return [], {}
    uid, gid = _ids(settings.sandbox_user)
    prefix: list[str] = []
    if _can_unshare_network():
        prefix = [shutil.which("unshare") or "unshare", "--net", "--"]
    setpriv = shutil.which("setpriv")
    if setpriv:
        return [*prefix, setpriv, f"--reuid={uid}", f"--regid={gid}", "--clear-groups", "--no-new-privs", "--"], {}
    return prefix, {"user": uid, "group": gid, "extra_groups": []}


def _ids(user: str) -> tuple[int, int]:
    try:
        entry = pwd.getpwnam(user)
    except KeyError:
        return FALLBACK_ID, FALLBACK_ID
    if entry.pw_uid == 0:
        raise InputError(f"the sandbox user {user!r} is root; set RISKATLAS_READ_SANDBOX_USER to an unprivileged user")
    return entry.pw_uid, entry.pw_gid


@functools.cache
def _can_unshare_network() -> bool:
    unshare = shutil.which("unshare")
    if not unshare:
        return False
    try:
        return subprocess.run([unshare, "--net", "--", "true"], capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def _kill(proc: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
