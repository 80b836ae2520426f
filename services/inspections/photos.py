"""Inspection photos: JPEG and PNG only, decoded and re-encoded here so that nothing but pixels survives.

The size of the file and the number of pixels are checked before the pixels are decoded (a
decompression bomb is refused from its header); the EXIF GPS position is kept as data, every other
metadata block (EXIF, XMP, ICC, text chunks, comments) is dropped by the re-encoding.
"""

from __future__ import annotations

import hashlib
import io
import warnings
from dataclasses import dataclass

from PIL import Image, ImageOps, UnidentifiedImageError

from services.errors import InvalidParameter, PayloadTooLarge

MAX_BYTES = 8 * 1024**2           # per photo as sent
MAX_PIXELS = 40_000_000           # width x height; a phone's 12-50 MP camera is resized by the page
FORMATS = {"JPEG": "image/jpeg", "PNG": "image/png"}
GPS_IFD = 0x8825


@dataclass(frozen=True)
class Photo:
    filename: str
    media_type: str
    data: bytes            # the re-encoded file
    sha256: str            # of ``data``
    sha256_in: str         # of the file as sent
    width: int
    height: int
    exif_lon: float | None
    exif_lat: float | None


def process(filename: str, raw: bytes, max_bytes: int = MAX_BYTES, max_pixels: int = MAX_PIXELS) -> Photo:
    """Check, decode and re-encode one photo; a 4xx naming ``filename`` for anything that is not a JPEG
    or PNG within the limits."""
    if len(raw) > max_bytes:
        raise PayloadTooLarge(f"photo {filename!r}: {len(raw)} bytes; a photo is limited to {max_bytes} bytes")
    if not raw:
        raise InvalidParameter(f"photo {filename!r}: the file is empty")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            im = Image.open(io.BytesIO(raw), formats=list(FORMATS))
            width, height = im.size
            if width * height > max_pixels:
                raise InvalidParameter(f"photo {filename!r}: {width} x {height} pixels; at most {max_pixels} "
                                       "pixels are accepted (a decompression bomb or an oversize image)")
            fmt = im.format or ""
            lon, lat = _gps(im)
            im.load()
    except (UnidentifiedImageError, Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise InvalidParameter(f"photo {filename!r}: not a JPEG or PNG image within {max_pixels} pixels") from None
    except (OSError, SyntaxError, ValueError):
        raise InvalidParameter(f"photo {filename!r}: the image is damaged or truncated") from None
    im = ImageOps.exif_transpose(im)  # the orientation tag is applied before it is dropped
    out = io.BytesIO()
    if fmt == "JPEG":
        im.convert("RGB").save(out, "JPEG", quality=85, optimize=False)
    else:
        keep = im if im.mode in ("1", "L", "LA", "P", "RGB", "RGBA") else im.convert("RGBA")
        keep.save(out, "PNG", compress_level=6)
    data = out.getvalue()
    return Photo(filename, FORMATS[fmt], data, hashlib.sha256(data).hexdigest(), hashlib.sha256(raw).hexdigest(),
                 im.size[0], im.size[1], lon, lat)


def _gps(im: Image.Image) -> tuple[float | None, float | None]:
    """The EXIF GPS position (WGS 84 as the phone reports it), or (None, None)."""
    try:
        gps = im.getexif().get_ifd(GPS_IFD)
    except Exception:  # noqa: BLE001 - a damaged EXIF block only loses the position
        return None, None
    try:
        lat = _degrees(gps[2]) * (-1 if gps.get(1) in ("S", b"S") else 1)
        lon = _degrees(gps[4]) * (-1 if gps.get(3) in ("W", b"W") else 1)
    except (KeyError, TypeError, ValueError, ZeroDivisionError, IndexError):
        return None, None
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        return None, None
    return round(lon, 7), round(lat, 7)


def _degrees(dms: tuple) -> float:
    d, m, s = (float(x) for x in dms)
    return d + m / 60 + s / 3600
