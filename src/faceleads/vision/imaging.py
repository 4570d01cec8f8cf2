"""Safe image intake: the only way pixels enter faceleads.

Every photo (probe, gallery enrolment, CLI argument) goes through :func:`load_image`, which

1. reads at most ``max_file_bytes`` (a path is ``stat``-ed before any byte is read),
2. detects the format from the content (magic bytes), never from the file name,
3. checks the declared dimensions from the header against ``max_pixels`` before any pixel is decoded,
4. checks the container structure (JPEG markers up to end-of-image, PNG chunk CRCs up to ``IEND``)
   so truncated or corrupt files are refused instead of "loading what it can",
5. decodes, applies the EXIF orientation and converts every mode to 8-bit RGB — reduced, when the caller allows
   it (``reduce_to``), for pictures above that many pixels: JPEG is decoded at 1/2, 1/4 or 1/8 scale by libjpeg
   itself (``draft``), other formats are reduced right after decoding, before any further copy,
6. returns the pixels together with the SHA-256 of the original bytes (evidence integrity).

Decoding is bounded per process by a weighted semaphore over pixels (``Settings.decode_budget_pixels``): a few
pictures that are small on disk but huge when decoded (a 143 KB PNG of 7000x7000) wait for each other instead of
exhausting memory together.

See ``docs/imaging.md`` for what is accepted and refused and why.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import math
import re
import stat
import struct
import threading
import time
import zlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from faceleads.config import Settings, get_settings
from faceleads.errors import ConfigurationError, ImageError
from faceleads.vision.types import ImageArray, LoadedImage

__all__ = ["ACCEPTED_FORMATS", "encode_jpeg", "encode_png", "image_format", "load_image"]

# Format names as reported by Pillow (and stored in LoadedImage.format).
ACCEPTED_FORMATS: tuple[str, ...] = ("JPEG", "PNG", "BMP", "TIFF", "WEBP")
_ACCEPTED_TEXT = "accepted: JPEG, PNG, BMP, TIFF, WebP"

_MB = 1024 * 1024
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# BITMAPCOREHEADER, BITMAPINFOHEADER, OS/2 v2 (16/64), V2, V3, V4, V5 header sizes.
_BMP_DIB_SIZES = frozenset({12, 16, 40, 52, 56, 64, 108, 124})
# Pillow modes carrying an alpha band ("LAB" has an "A" but no alpha, hence an explicit list).
_ALPHA_MODES = frozenset({"LA", "La", "PA", "RGBA", "RGBa"})
# A JPEG marker inside entropy-coded data: 0xFF followed by anything except a stuffed zero,
# a restart marker (D0-D7) or another 0xFF fill byte.
_JPEG_MARKER = re.compile(rb"\xff+([^\x00\xd0-\xd7\xff])")


# --------------------------------------------------------------------------- sniffing


def image_format(data: bytes) -> str | None:
    """Return the accepted format of ``data`` from its magic bytes, or ``None``.

    Only the five accepted formats are recognised: ``"JPEG"``, ``"PNG"``, ``"BMP"``,
    ``"TIFF"`` and ``"WEBP"``. The file name plays no part.
    """
    head = bytes(data[:32])
    if head.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if head.startswith(_PNG_SIGNATURE):
        return "PNG"
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return "TIFF"
    if len(head) >= 12 and head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WEBP"
    # "BM" alone is too weak a signature (plenty of text starts with "BM"): also require a
    # known DIB header size at offset 14.
    if len(head) >= 18 and head[:2] == b"BM" and struct.unpack_from("<I", head, 14)[0] in _BMP_DIB_SIZES:
        return "BMP"
    return None


MEDIA_TYPES = {"JPEG": "image/jpeg", "PNG": "image/png", "BMP": "image/bmp", "TIFF": "image/tiff",
               "WEBP": "image/webp"}  # fmt: skip


def media_type(data: bytes) -> str:
    """The HTTP media type of an accepted image, from its magic bytes (``application/octet-stream`` otherwise)."""
    fmt = image_format(data)
    return MEDIA_TYPES.get(fmt, "application/octet-stream") if fmt else "application/octet-stream"


def _describe_content(data: bytes) -> str:
    """Name what a refused file looks like, for the error message."""
    head = bytes(data[:64])
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "GIF"
    if head.startswith(b"%PDF"):
        return "PDF"
    if len(head) >= 12 and head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in (b"avif", b"avis"):
            return "AVIF"
        if brand in (b"heic", b"heix", b"hevc", b"hevx", b"mif1", b"msf1"):
            return "HEIC/HEIF"
        return "an MP4/QuickTime-family file"
    if head.startswith(b"\x00\x00\x00\x0cjP  ") or head.startswith(b"\xff\x4f\xff\x51"):
        return "JPEG 2000"
    if head.startswith(b"8BPS"):
        return "Photoshop PSD"
    if head.startswith(b"PK\x03\x04"):
        return "a ZIP archive"
    if head.startswith(b"\x00\x00\x01\x00"):
        return "a Windows icon"
    if head[:4] in (b"II+\x00", b"MM\x00+"):
        return "BigTIFF"
    if head.startswith(b"RIFF"):
        return "a non-WebP RIFF file"
    if head.startswith(b"\xff\xd8"):
        return "a damaged JPEG (no valid marker after the start-of-image)"
    sample = bytes(data[:4096])
    try:
        text = sample.decode("utf-8")
    except UnicodeDecodeError:
        text = ""
        # A cut in the middle of a multi-byte character at the end of the sample is still text.
        try:
            text = sample[:-3].decode("utf-8") if len(sample) > 3 else ""
        except UnicodeDecodeError:
            text = ""
    if text and all(ch.isprintable() or ch in "\r\n\t\f" for ch in text):
        stripped = text.lstrip().lower()
        if stripped.startswith(("<svg", "<?xml")) and "<svg" in stripped:
            return "SVG (vector drawing, not a photo)"
        return "text"
    return f"unknown binary data (first bytes {head[:8].hex(' ')})"


# --------------------------------------------------------------------------- formatting


def _fmt_bytes(n: int) -> str:
    if n >= _MB:
        return f"{n / _MB:.1f} MB".replace(".0 MB", " MB")
    if n >= 1024:
        return f"{n / 1024:.1f} KB".replace(".0 KB", " KB")
    return f"{n} bytes"


def _fmt_pixels(n: int) -> str:
    if n >= 1_000_000:
        return f"{n / 1_000_000:.1f} MP".replace(".0 MP", " MP")
    return f"{n} pixels"


# --------------------------------------------------------------------------- reading


def _read_source(source: object, max_bytes: int) -> tuple[bytes, str]:
    """Return (bytes, label) for a path or an in-memory buffer, enforcing the size limit first."""
    limit_text = f"over the {_fmt_bytes(max_bytes)} limit"
    if isinstance(source, bytes | bytearray | memoryview):
        data = bytes(source)
        if len(data) > max_bytes:
            raise ImageError(f"image data is {_fmt_bytes(len(data))}, {limit_text}")
        return data, "image data"
    if isinstance(source, str | Path):
        if isinstance(source, str) and not source.strip():
            raise ImageError("no image path given (empty string)")
        path = Path(source)
        label = str(path)
        try:
            st = path.stat()
        except FileNotFoundError:
            raise ImageError(f"image file not found: {label}") from None
        except OSError as exc:
            raise ImageError(f"cannot access image file {label}: {exc.strerror or exc}") from None
        if stat.S_ISDIR(st.st_mode):
            raise ImageError(f"{label} is a directory, not an image file")
        if not stat.S_ISREG(st.st_mode):
            # Devices and FIFOs can be endless (/dev/zero) or block forever.
            raise ImageError(f"{label} is not a regular file")
        if st.st_size > max_bytes:
            raise ImageError(f"file {label} is {_fmt_bytes(st.st_size)}, {limit_text}")
        try:
            with path.open("rb") as fh:
                # Read one byte more than allowed: the file may have grown since stat().
                data = fh.read(max_bytes + 1)
        except OSError as exc:
            raise ImageError(f"cannot read image file {label}: {exc.strerror or exc}") from None
        if len(data) > max_bytes:
            raise ImageError(f"file {label} is over the {_fmt_bytes(max_bytes)} limit (it grew while read)")
        return data, label
    raise TypeError(
        f"load_image() expects a file path (str or pathlib.Path) or the image bytes, "
        f"not {type(source).__name__}"
    )


# --------------------------------------------------------------------------- structure checks


def _check_jpeg_structure(data: bytes) -> tuple[int, int] | None:
    """Walk the JPEG markers and require an end-of-image marker after the last scan.

    Returns the (width, height) of the first frame header, if one was seen.

    libjpeg silently pads a JPEG that ends early and Pillow accepts one cut just before
    its last bytes; walking the markers makes every cut detectable.
    """
    pos = 2  # after SOI
    n = len(data)
    seen_scan = False
    size: tuple[int, int] | None = None
    while True:
        if pos >= n:
            raise ImageError("truncated or corrupt JPEG: the file ends before its end-of-image marker")
        if data[pos] != 0xFF:
            raise ImageError(f"truncated or corrupt JPEG: expected a marker at byte {pos}")
        while pos < n and data[pos] == 0xFF:  # fill bytes
            pos += 1
        if pos >= n:
            raise ImageError("truncated or corrupt JPEG: the file ends before its end-of-image marker")
        marker = data[pos]
        pos += 1
        if marker == 0xD9:  # EOI
            if not seen_scan:
                raise ImageError("truncated or corrupt JPEG: end-of-image before any image data")
            return size
        if marker == 0x01 or 0xD0 <= marker <= 0xD7:  # TEM / stray RST: no length
            continue
        if pos + 2 > n:
            raise ImageError("truncated or corrupt JPEG: the file ends inside a marker segment")
        (length,) = struct.unpack_from(">H", data, pos)
        if length < 2 or pos + length > n:
            raise ImageError(
                f"truncated or corrupt JPEG: segment 0x{marker:02X} at byte {pos - 2} overruns the file"
            )
        # SOF0-SOF15 except DHT (C4), JPG (C8) and DAC (CC): precision, height, width.
        if size is None and 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC) and length >= 7:
            height, width = struct.unpack_from(">HH", data, pos + 3)
            size = (width, height)
        pos += length
        if marker == 0xDA:  # SOS: skip the entropy-coded data up to the next real marker
            seen_scan = True
            match = _JPEG_MARKER.search(data, pos)
            if match is None:
                raise ImageError(
                    "truncated or corrupt JPEG: the image data ends without an end-of-image marker"
                )
            pos = match.start(1) - 1  # the last 0xFF before the marker code


def _header_size(data: bytes, fmt: str) -> tuple[int, int] | None:
    """Declared (width, height) read straight from the header bytes, before Pillow sees the file.

    Gives a precise message for bombs that Pillow's own guard would refuse inside ``open()``.
    ``None`` when the header cannot be read here; Pillow's checks then still apply.
    """
    try:
        if fmt == "TIFF" and len(data) >= 8:
            endian = "<" if data[:2] == b"II" else ">"
            (ifd,) = struct.unpack_from(endian + "I", data, 4)
            (count,) = struct.unpack_from(endian + "H", data, ifd)
            dims: dict[int, int] = {}
            for i in range(min(count, 4096)):
                tag, typ = struct.unpack_from(endian + "HH", data, ifd + 2 + 12 * i)
                if tag in (256, 257) and typ in (3, 4):  # ImageWidth, ImageLength as SHORT or LONG
                    value_fmt = endian + ("H" if typ == 3 else "I")
                    dims[tag] = int(struct.unpack_from(value_fmt, data, ifd + 2 + 12 * i + 8)[0])
            if 256 in dims and 257 in dims:
                return dims[256], dims[257]
            return None
        if fmt == "PNG" and len(data) >= 24:
            w, h = struct.unpack_from(">II", data, 16)
            return int(w), int(h)
        if fmt == "BMP" and len(data) >= 26:
            if struct.unpack_from("<I", data, 14)[0] == 12:  # OS/2 core header: 16-bit sizes
                w, h = struct.unpack_from("<HH", data, 18)
            else:
                w, h = struct.unpack_from("<ii", data, 18)
            return abs(int(w)), abs(int(h))  # negative height = top-down rows
        if fmt == "WEBP" and len(data) >= 30:
            chunk = data[12:16]
            if chunk == b"VP8X":
                w = int.from_bytes(data[24:27], "little") + 1
                h = int.from_bytes(data[27:30], "little") + 1
                return w, h
            if chunk == b"VP8L":
                bits = int.from_bytes(data[21:25], "little")
                return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
            if chunk == b"VP8 ":
                w, h = struct.unpack_from("<HH", data, 26)
                return int(w) & 0x3FFF, int(h) & 0x3FFF
    except struct.error:
        return None
    return None


def _check_png_structure(data: bytes) -> None:
    """Walk the PNG chunks: every CRC must match and the file must end with ``IEND``."""
    pos = len(_PNG_SIGNATURE)
    n = len(data)
    first = True
    seen_idat = False
    while True:
        if pos + 8 > n:
            raise ImageError("truncated or corrupt PNG: the file ends before its IEND chunk")
        length, ctype = struct.unpack_from(">I4s", data, pos)
        if first and ctype != b"IHDR":
            raise ImageError("truncated or corrupt PNG: the first chunk is not IHDR")
        first = False
        end = pos + 12 + length
        if length > 0x7FFFFFFF or end > n:
            raise ImageError(
                f"truncated or corrupt PNG: chunk {ctype.decode('latin-1')!r} at byte {pos} overruns the file"
            )
        (crc,) = struct.unpack_from(">I", data, pos + 8 + length)
        if zlib.crc32(data[pos + 4 : pos + 8 + length]) != crc:
            raise ImageError(
                f"truncated or corrupt PNG: CRC mismatch in chunk {ctype.decode('latin-1')!r} at byte {pos}"
            )
        if ctype == b"IDAT":
            seen_idat = True
        if ctype == b"IEND":
            if not seen_idat:
                raise ImageError("truncated or corrupt PNG: no image data (IDAT) before IEND")
            return
        pos = end


# --------------------------------------------------------------------------- conversion


def _composite_on_white(rgba: Image.Image) -> ImageArray:
    """Flatten an RGBA image on white (see docs/imaging.md: transparent areas become white)."""
    arr = np.asarray(rgba, dtype=np.uint8)
    alpha = arr[..., 3:4].astype(np.float32) / 255.0
    rgb = arr[..., :3].astype(np.float32)
    out = rgb * alpha + 255.0 * (1.0 - alpha)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def _gray_to_rgb(gray: np.ndarray) -> ImageArray:
    return np.repeat(gray[..., None], 3, axis=2)


def _to_rgb(img: Image.Image) -> ImageArray:
    """Convert any Pillow mode to a contiguous uint8 (H, W, 3) RGB array."""
    mode = img.mode
    if mode == "RGB":
        return np.asarray(img, dtype=np.uint8)
    if mode.startswith("I;16") or mode == "I":
        # 16-bit grayscale (PNG, TIFF): scale 0..65535 onto 0..255 (rounded), never clip at 255.
        # Mode "I" is 32-bit; Pillow uses it for 16-bit data too, so it is read as 0..65535.
        wide = np.asarray(img).astype(np.float64)
        wide = np.clip(wide, 0, 65535)
        return _gray_to_rgb(np.rint(wide / 257.0).astype(np.uint8))
    if mode == "F":
        # Float grayscale: 0..1 data (the usual convention) is stretched to 0..255, anything
        # else is taken as already on the 0..255 scale and clipped.
        f = np.nan_to_num(np.asarray(img, dtype=np.float64), nan=0.0, posinf=255.0, neginf=0.0)
        if f.size and float(f.min()) >= 0.0 and float(f.max()) <= 1.0:
            f = f * 255.0
        return _gray_to_rgb(np.clip(np.rint(f), 0, 255).astype(np.uint8))
    if mode in _ALPHA_MODES or "transparency" in img.info:
        return _composite_on_white(img.convert("RGBA"))
    # 1, L, P, CMYK (Pillow already undoes Adobe's inverted CMYK), YCbCr, LAB, HSV...
    return np.asarray(img.convert("RGB"), dtype=np.uint8)


# --------------------------------------------------------------------------- decode budget


class DecodeBudget:
    """A weighted semaphore over pixels being decoded at once in this process.

    A decode holds its picture's pixel count (capped at the capacity, so one picture up to the limit always gets
    through on its own) from the moment pixels are decoded until they are converted to RGB.
    """

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError("decode budget capacity must be at least 1 pixel")
        self.capacity = capacity
        self.in_use = 0
        self.peak = 0
        self._cond = threading.Condition()

    @contextlib.contextmanager
    def hold(self, pixels: int, timeout: float) -> Iterator[None]:
        """Hold ``pixels`` of the budget for the block; :class:`ImageError` after ``timeout`` seconds of waiting."""
        weight = min(max(int(pixels), 1), self.capacity)
        deadline = time.monotonic() + timeout
        with self._cond:
            while self.in_use + weight > self.capacity:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise ImageError(
                        "too many large pictures are being decoded at this moment; try again in a minute"
                    )
                self._cond.wait(left)
            self.in_use += weight
            self.peak = max(self.peak, self.in_use)
        try:
            yield
        finally:
            with self._cond:
                self.in_use -= weight
                self._cond.notify_all()


_budgets: dict[int, DecodeBudget] = {}
_budgets_lock = threading.Lock()


def decode_budget(capacity: int) -> DecodeBudget:
    """The process-wide budget of this capacity (one per distinct setting; normally exactly one)."""
    with _budgets_lock:
        budget = _budgets.get(capacity)
        if budget is None:
            budget = _budgets[capacity] = DecodeBudget(capacity)
        return budget


def reduction_factor(width: int, height: int, target_pixels: int) -> int:
    """The smallest integer factor that brings ``width`` x ``height`` to at most ``target_pixels`` (1 = none)."""
    if width * height <= target_pixels:
        return 1
    factor = max(2, math.ceil(math.sqrt(width * height / target_pixels)))
    while math.ceil(width / factor) * math.ceil(height / factor) > target_pixels:
        factor += 1
    return factor


def _reduce(img: Image.Image, factor: int) -> Image.Image:
    """``img`` reduced by an integer ``factor`` (box filter: every source pixel counts, no aliasing)."""
    if factor <= 1:
        return img
    info = dict(img.info)
    if img.mode in ("P", "PA"):
        # Palette indexes cannot be averaged: expand first (alpha kept for the white compositing).
        img = img.convert("RGBA" if img.mode == "PA" or "transparency" in img.info else "RGB")
    elif img.mode == "1":
        img = img.convert("L")
    elif img.mode.startswith("I;16"):
        img = img.convert("I")  # same 0..65535 values, a mode reduce() averages
    reduced = img.reduce(factor)
    reduced.info = info  # keeps the EXIF orientation for exif_transpose
    return reduced


# --------------------------------------------------------------------------- public API


def _check_pixels(label: str, width: int, height: int, pixel_limit: int) -> None:
    if width < 1 or height < 1:
        raise ImageError(f"{label}: image has no pixels ({width}x{height})")
    if width * height > pixel_limit:
        raise ImageError(
            f"{label}: image is {width}x{height} = {_fmt_pixels(width * height)}, "
            f"over the {_fmt_pixels(pixel_limit)} limit"
        )


def _positive_limit(name: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return value


def load_image(
    source: Path | str | bytes,
    settings: Settings | None = None,
    *,
    max_bytes: int | None = None,
    max_pixels: int | None = None,
    reduce_to: int | None = None,
) -> LoadedImage:
    """Load an image safely and return its RGB pixels with the SHA-256 of the original bytes.

    ``source`` is a file path or the raw file bytes. Limits default to ``settings.max_file_bytes``
    and ``settings.max_pixels``; ``max_bytes``/``max_pixels`` override them for one call.
    ``reduce_to``: a picture above this many pixels is decoded reduced by an integer factor (``scale`` of the
    result); ``width``/``height`` and the SHA-256 stay those of the original. Use it where the purpose allows
    (detection, display crops), never where pixel coordinates of the original are edited (evidence edits).

    Raises :class:`faceleads.errors.ImageError` naming the problem for every refused input
    (missing file, directory, over a limit, unsupported or unrecognised format, animated or
    multi-page image, truncated or corrupt data). A ``source`` of the wrong Python type raises
    ``TypeError``.
    """
    settings = settings if settings is not None else get_settings()
    max_bytes = max_bytes if max_bytes is not None else settings.max_file_bytes
    max_pixels = max_pixels if max_pixels is not None else settings.max_pixels
    byte_limit = _positive_limit("max_bytes", max_bytes)
    pixel_limit = _positive_limit("max_pixels", max_pixels)
    if ImageFile.LOAD_TRUNCATED_IMAGES:
        # A global switch someone else flipped would make Pillow "load what it can".
        raise ConfigurationError(
            "PIL.ImageFile.LOAD_TRUNCATED_IMAGES is True in this process; the safe intake refuses to "
            "decode images while truncated files would load silently"
        )

    data, label = _read_source(source, byte_limit)
    if not data:
        raise ImageError(f"{label} is empty (0 bytes)")
    digest = hashlib.sha256(data).hexdigest()

    fmt = image_format(data)
    if fmt is None:
        what = _describe_content(data)
        if what == "GIF":
            animated = data.count(b"\x21\xf9\x04") > 1  # more than one graphic control block
            kind = "animated GIF" if animated else "GIF"
            raise ImageError(f"{label}: {kind} is not accepted ({_ACCEPTED_TEXT})")
        raise ImageError(f"{label}: not a supported image: content looks like {what} ({_ACCEPTED_TEXT})")

    # Pixel limit from the header bytes first: Pillow is not even asked to parse a bomb.
    declared = _check_jpeg_structure(data) if fmt == "JPEG" else _header_size(data, fmt)
    if declared is not None:
        _check_pixels(label, *declared, pixel_limit)
    if fmt == "PNG":
        _check_png_structure(data)

    try:
        img = Image.open(io.BytesIO(data), formats=[fmt])
    except Image.DecompressionBombError as exc:
        # Pillow's own guard (about 179 MP) fires inside open(), e.g. for a TIFF bomb or when
        # max_pixels is set above it. It stays in force: a limit above it is not honoured.
        found = re.search(r"\((\d+) pixels\)", str(exc))
        count = int(found.group(1)) if found else 0
        which = (
            f"the {_fmt_pixels(pixel_limit)} limit"
            if count > pixel_limit
            else f"Pillow's decompression-bomb limit of {_fmt_pixels(2 * (Image.MAX_IMAGE_PIXELS or 0))}"
        )
        what = _fmt_pixels(count) if count else "too many pixels"
        raise ImageError(f"{label}: image is {what}, over {which}") from None
    except UnidentifiedImageError:
        # Pillow's own message names an in-memory buffer object, which helps nobody.
        raise ImageError(f"{label}: truncated or corrupt {fmt}: the header cannot be parsed") from None
    except Exception as exc:
        raise ImageError(f"{label}: truncated or corrupt {fmt}: {exc}") from None

    with img:
        width, height = img.size
        _check_pixels(label, width, height, pixel_limit)
        try:
            # Counting TIFF pages walks the IFD chain, which a damaged file can break.
            frames = int(getattr(img, "n_frames", 1))
        except Exception as exc:
            raise ImageError(f"{label}: truncated or corrupt {fmt}: {exc}") from None
        if frames > 1 and fmt != "JPEG":
            # JPEG with several frames is MPO (phones, stereo cameras): the first frame is the
            # primary photo every viewer shows. Elsewhere frames are an animation or pages, and
            # silently picking one would search something the analyst did not choose.
            kind = "multi-page TIFF" if fmt == "TIFF" else f"animated {'WebP' if fmt == 'WEBP' else fmt}"
            unit = "pages" if fmt == "TIFF" else "frames"
            raise ImageError(
                f"{label}: {kind} ({frames} {unit}) is not accepted: extract the single picture you mean"
            )
        factor = reduction_factor(width, height, reduce_to) if reduce_to else 1
        decoded_pixels = width * height
        try:
            if factor > 1 and fmt == "JPEG":
                # libjpeg decodes at 1/2, 1/4 or 1/8 scale directly: the full picture is never in memory.
                img.draft("RGB", (math.ceil(width / factor), math.ceil(height / factor)))
                decoded_pixels = img.size[0] * img.size[1]
                factor = reduction_factor(img.size[0], img.size[1], reduce_to) if reduce_to else 1
            with decode_budget(settings.decode_budget_pixels).hold(decoded_pixels, settings.decode_wait_seconds):
                img.load()
                reduced = factor > 1 or img.size != (width, height)
                small = _reduce(img, factor)  # the full-size buffer is freed as soon as the reduced one exists
                upright = ImageOps.exif_transpose(small)
                turned = upright.size != small.size or (
                    reduced and int(small.getexif().get(0x0112, 1)) in (5, 6, 7, 8)  # quarter turns
                )
                pixels = np.ascontiguousarray(_to_rgb(upright), dtype=np.uint8)
                del small, upright
        except ImageError:
            raise
        except Image.DecompressionBombError as exc:
            raise ImageError(f"{label}: image is over the pixel limit ({exc})") from None
        except MemoryError:
            raise ImageError(f"{label}: not enough memory to decode this {width}x{height} image") from None
        except Exception as exc:
            raise ImageError(f"{label}: truncated or corrupt {fmt}: {exc}") from None

    if pixels.ndim != 3 or pixels.shape[2] != 3:  # defensive: never hand out a wrong shape
        raise ImageError(f"{label}: could not convert the {fmt} image to RGB (got shape {pixels.shape})")
    out_h, out_w = pixels.shape[:2]
    # The original's size with the EXIF orientation applied (a quarter turn swaps the sides).
    orig_w, orig_h = (height, width) if turned else (width, height)
    if not reduced:
        orig_w, orig_h = out_w, out_h
    return LoadedImage(
        pixels=pixels, sha256=digest, format=fmt, size_bytes=len(data), width=orig_w, height=orig_h,
        scale=orig_w / out_w,
    )


def _as_pil(pixels: np.ndarray) -> Image.Image:
    arr = np.asarray(pixels)
    if arr.dtype != np.uint8:
        raise ImageError(f"cannot encode pixels of dtype {arr.dtype}: expected uint8")
    if arr.ndim == 2:
        return Image.fromarray(np.ascontiguousarray(arr), mode="L")
    if arr.ndim == 3 and arr.shape[2] == 3:
        return Image.fromarray(np.ascontiguousarray(arr), mode="RGB")
    raise ImageError(f"cannot encode pixels of shape {arr.shape}: expected (H, W, 3) RGB or (H, W) gray")


def encode_png(pixels: np.ndarray) -> bytes:
    """Encode a uint8 (H, W, 3) RGB or (H, W) grayscale array as PNG bytes (lossless)."""
    buf = io.BytesIO()
    _as_pil(pixels).save(buf, format="PNG", compress_level=6)
    return buf.getvalue()


def encode_jpeg(pixels: np.ndarray, quality: int = 95) -> bytes:
    """Encode a uint8 (H, W, 3) RGB or (H, W) grayscale array as JPEG bytes at ``quality`` (1-100)."""
    if isinstance(quality, bool) or not isinstance(quality, int) or not 1 <= quality <= 100:
        raise ValueError(f"JPEG quality must be an integer from 1 to 100, got {quality!r}")
    buf = io.BytesIO()
    _as_pil(pixels).save(buf, format="JPEG", quality=quality)
    return buf.getvalue()
