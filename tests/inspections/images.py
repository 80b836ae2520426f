"""Real image files for the inspection tests, made with Pillow."""

from __future__ import annotations

import io

from PIL import Image


def jpeg(lon: float | None = 118.31, lat: float | None = 32.30, size: tuple[int, int] = (64, 48),
         noise: bool = False) -> bytes:
    """A JPEG with an EXIF block (camera make, and the GPS position when given)."""
    import os

    im = Image.frombytes("RGB", size, os.urandom(size[0] * size[1] * 3)) if noise else Image.new("RGB", size, "orange")
    exif = Image.Exif()
    exif[0x010F] = "TestCam"  # Make: must not survive
    if lon is not None and lat is not None:
        gps = exif.get_ifd(0x8825)
        gps[1], gps[3] = "N", "E"
        gps[2] = _dms(lat)
        gps[4] = _dms(lon)
    out = io.BytesIO()
    im.save(out, "JPEG", exif=exif, quality=90)
    return out.getvalue()


def png(size: tuple[int, int] = (32, 32)) -> bytes:
    out = io.BytesIO()
    Image.new("RGBA", size, (0, 128, 255, 200)).save(out, "PNG")
    return out.getvalue()


def png_bomb() -> bytes:
    """A small PNG that declares 7000 x 7000 pixels (49 MP, over the limit): refused from its header."""
    out = io.BytesIO()
    Image.new("1", (7000, 7000)).save(out, "PNG")
    return out.getvalue()


def _dms(value: float) -> tuple[float, float, float]:
    d = int(value)
    m = int((value - d) * 60)
    s = round((value - d - m / 60) * 3600, 4)
    return (float(d), float(m), s)
