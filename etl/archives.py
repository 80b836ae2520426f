"""Unpacking uploaded archives by hand, never through GDAL's /vsizip/.

Sizes and compression ratios are judged from the archive's directory before anything is unpacked,
then counted again while the one wanted dataset (for a shapefile: .shp, .shx, .dbf, .prj, .cpg)
is streamed out.  Symbolic links, absolute or ``..`` paths, encrypted members and archives inside
archives are refused.  Members are written under names of our making, flat in ``dest``.
"""

from __future__ import annotations

import stat
import zipfile
import zlib
from pathlib import Path, PurePosixPath

from etl.errors import InputError
from etl.formats import SUFFIX_KIND, refuse
from etl.limits import MiB, ParseLimits

WANTED = {"zip": (".shp", ".gpkg", ".geojson", ".kml"), "kmz": (".kml",)}
SHAPE_PARTS = (".shx", ".dbf", ".prj", ".cpg")
NESTED = {".zip", ".kmz", ".gz", ".tgz", ".tar", ".7z", ".rar", ".bz2", ".xz", ".zst", ".lz", ".lzma", ".z", ".cab"}
SMALL = MiB  # members smaller than this are not judged by their compression ratio
CHUNK = MiB


def extract(path: Path, kind: str, label: str, dest: Path, limits: ParseLimits) -> tuple[Path, str, str]:
    """Unpack the one dataset an archive holds into ``dest``.

    Returns the unpacked file, its format and the label naming it in messages.
    """
    try:
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
            check_members(infos, label, limits)
            files = [i for i in infos if not i.is_dir()]
            wanted = [i for i in files if _suffix(i) in WANTED[kind]]
            if len(wanted) != 1:
                raise refuse(label, f"should hold exactly one {'/'.join(WANTED[kind])} file, "
                                    f"but holds {len(wanted)}")
            main = wanted[0]
            parts = [main, *(_shape_parts(main, files, label) if _suffix(main) == ".shp" else [])]
            stem = _safe_stem(main)
            remaining = limits.max_unpacked_bytes
            for info in parts:
                remaining -= _unpack(zf, info, dest / f"{stem}{_suffix(info)}", label, remaining)
    except InputError:
        raise
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError, ValueError, OSError):
        raise refuse(label, "is not a readable zip archive") from None
    member = PurePosixPath(main.filename.replace("\\", "/")).name
    return dest / f"{stem}{_suffix(main)}", SUFFIX_KIND[_suffix(main)], f"{label[:-1]}: member {member!r}"


def check_members(infos: list[zipfile.ZipInfo], label: str, limits: ParseLimits) -> None:
    """Refuse unsafe members and archives that would unpack beyond the limits (from the directory)."""
    if len(infos) > limits.max_archive_members:
        raise refuse(label, f"holds {len(infos)} members, more than the limit of {limits.max_archive_members}")
    for info in infos:
        name = info.filename.replace("\\", "/")
        parts = PurePosixPath(name).parts
        if name.startswith("/") or ".." in parts or (parts and parts[0].endswith(":")) or "\x00" in name:
            raise refuse(label, "holds a member with an absolute or parent-relative path; such archives are refused")
        if stat.S_ISLNK(info.external_attr >> 16):
            raise refuse(label, "holds a symbolic link; links are not accepted")
        if info.flag_bits & 0x1:
            raise refuse(label, "holds encrypted members, which cannot be read")
        if not info.is_dir() and _suffix(info) in NESTED:
            raise refuse(label, f"holds another archive ({_shown(info)}); archives inside archives are not accepted")
    total = sum(i.file_size for i in infos)
    packed = sum(i.compress_size for i in infos)
    if total > limits.max_unpacked_bytes:
        raise refuse(label, f"unpacks to {total} bytes, more than the limit of {limits.max_unpacked_bytes} bytes")
    for info in infos:
        if info.file_size > SMALL and info.file_size > limits.max_compression_ratio * max(info.compress_size, 1):
            raise refuse(label, f"holds a member compressed {info.file_size / max(info.compress_size, 1):.0f} to 1, "
                                f"more than the limit of {limits.max_compression_ratio:g} to 1")
    if total > SMALL and total > limits.max_compression_ratio * max(packed, 1):
        raise refuse(label, f"is compressed {total / max(packed, 1):.0f} to 1, more than the limit of "
                            f"{limits.max_compression_ratio:g} to 1")


def _unpack(zf: zipfile.ZipFile, info: zipfile.ZipInfo, target: Path, label: str, remaining: int) -> int:
    """Stream one member out, counting bytes against its stated size and what is left of the limit."""
    written = 0
    with zf.open(info) as src, target.open("xb") as dst:
        while chunk := src.read(CHUNK):
            written += len(chunk)
            if written > info.file_size or written > remaining:
                raise refuse(label, "unpacks to more than its directory states or the limit allows")
            dst.write(chunk)
    return written


def _shape_parts(main: zipfile.ZipInfo, files: list[zipfile.ZipInfo], label: str) -> list[zipfile.ZipInfo]:
    """The .shx, .dbf, .prj and .cpg beside the .shp (same folder and stem, any case)."""
    folder, stem = _folder_stem(main)
    found: dict[str, zipfile.ZipInfo] = {}
    for info in files:
        if _folder_stem(info) == (folder, stem) and _suffix(info) in SHAPE_PARTS:
            if _suffix(info) in found:
                raise refuse(label, f"holds two {_suffix(info)} files for one shapefile")
            found[_suffix(info)] = info
    return list(found.values())


def _folder_stem(info: zipfile.ZipInfo) -> tuple[str, str]:
    p = PurePosixPath(info.filename.replace("\\", "/"))
    return str(p.parent).lower(), p.stem.lower()


def _safe_stem(info: zipfile.ZipInfo) -> str:
    stem = PurePosixPath(info.filename.replace("\\", "/")).stem
    cleaned = "".join(c if c.isprintable() and c not in "/\\" else "_" for c in stem).lstrip(".-")
    return cleaned[:100] or "data"


def _suffix(info: zipfile.ZipInfo) -> str:
    return PurePosixPath(info.filename.replace("\\", "/")).suffix.lower()


def _shown(info: zipfile.ZipInfo) -> str:
    name = info.filename
    return repr(name if len(name) <= 80 else name[:77] + "...")
