"""Safe image intake: a bad-input corpus generated here, plus correct conversions of good input."""

from __future__ import annotations

import hashlib
import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFile

from faceleads.config import Settings
from faceleads.errors import ConfigurationError, ImageError
from faceleads.vision.imaging import encode_jpeg, encode_png, image_format, load_image

FACES = Path(__file__).resolve().parents[2] / ".." / "shared" / "faces"
FACE_JPEG = FACES / "lfw-dev" / "images" / "AJ_Cook" / "AJ_Cook_0001.jpg"


# --------------------------------------------------------------------------- helpers


def _chunk(ctype: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + ctype + body + struct.pack(">I", zlib.crc32(ctype + body))


def _png(width: int, height: int, bit_depth: int, color_type: int, idat: bytes) -> bytes:
    """A hand-built PNG with a valid structure (CRCs, IEND) around ``idat`` (already compressed)."""
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")


def _streamed_blank_png(width: int, height: int) -> bytes:
    """A genuine single-colour 8-bit grayscale PNG, compressed row by row (never held in memory)."""
    comp = zlib.compressobj(9)
    row = b"\x00" * (width + 1)  # filter byte + pixels
    parts = [comp.compress(row) for _ in range(height)]
    parts.append(comp.flush())
    return _png(width, height, 8, 0, b"".join(parts))


def _encode(img: Image.Image, fmt: str, **kwargs: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kwargs)
    return buf.getvalue()


@pytest.fixture(scope="module")
def face_bytes() -> bytes:
    return FACE_JPEG.read_bytes()


@pytest.fixture(scope="module")
def face_rgb() -> np.ndarray:
    # Cropped to a non-square shape so that a rotation left undone shows up in the shape too.
    with Image.open(FACE_JPEG) as im:
        return np.asarray(im.convert("RGB"))[20:230, 35:215].copy()


def _write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


# --------------------------------------------------------------------------- refused input


def test_zero_byte_file_is_refused(tmp_path: Path) -> None:
    path = _write(tmp_path, "empty.jpg", b"")
    with pytest.raises(ImageError, match=r"empty \(0 bytes\)"):
        load_image(path)


def test_zero_bytes_in_memory_are_refused() -> None:
    with pytest.raises(ImageError, match="empty"):
        load_image(b"")


def test_text_named_jpg_is_refused(tmp_path: Path) -> None:
    path = _write(tmp_path, "photo.jpg", b"Suspect description: tall, dark jacket.\nSeen 22:10.\n")
    with pytest.raises(ImageError, match=r"not a supported image: content looks like text \(accepted: JPEG"):
        load_image(path)


@pytest.mark.parametrize(
    ("payload", "what"),
    [
        (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj", "PDF"),
        (b"\x00\x00\x00\x1cftypheic\x00\x00\x00\x00mif1heic", "HEIC"),
        (b"PK\x03\x04\x14\x00\x00\x00\x08\x00" + bytes(40), "ZIP"),
        (b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"></svg>', "SVG"),
        (bytes(range(256)) * 4, "unknown binary data"),
        (b"BM this is not a bitmap header at all", "text"),
    ],
)
def test_other_content_is_refused_and_named(payload: bytes, what: str) -> None:
    with pytest.raises(ImageError, match=f"content looks like.*{what}"):
        load_image(payload)


@pytest.mark.parametrize("cut", ["half", "ninety_percent", "without_eoi", "last_byte"])
def test_truncated_jpeg_is_refused(tmp_path: Path, face_bytes: bytes, cut: str) -> None:
    assert face_bytes.endswith(b"\xff\xd9")
    keep = {
        "half": len(face_bytes) // 2,
        "ninety_percent": len(face_bytes) * 9 // 10,
        "without_eoi": len(face_bytes) - 2,
        "last_byte": len(face_bytes) - 1,
    }[cut]
    path = _write(tmp_path, "cut.jpg", face_bytes[:keep])
    with pytest.raises(ImageError, match="truncated or corrupt JPEG"):
        load_image(path)


def test_jpeg_header_only_is_refused(face_bytes: bytes) -> None:
    sos = face_bytes.index(b"\xff\xda")
    with pytest.raises(ImageError, match="truncated or corrupt JPEG"):
        load_image(face_bytes[:sos])


@pytest.mark.parametrize("fmt", ["PNG", "BMP", "TIFF", "WEBP"])
def test_truncated_other_formats_are_refused(face_rgb: np.ndarray, fmt: str) -> None:
    data = _encode(Image.fromarray(face_rgb), fmt, **({"lossless": True} if fmt == "WEBP" else {}))
    with pytest.raises(ImageError, match=f"truncated or corrupt {fmt}"):
        load_image(data[: len(data) * 2 // 3])


def test_png_with_bad_crc_is_refused(face_rgb: np.ndarray) -> None:
    data = bytearray(_encode(Image.fromarray(face_rgb), "PNG"))
    idat = data.index(b"IDAT")
    data[idat + 100] ^= 0xFF  # one flipped byte in the compressed pixels
    with pytest.raises(ImageError, match="CRC mismatch in chunk 'IDAT'"):
        load_image(bytes(data))


def test_png_with_corrupt_zlib_stream_is_refused() -> None:
    # Valid chunk structure and CRCs, but the IDAT payload is not a zlib stream.
    data = _png(64, 64, 8, 2, b"\x78\x9c" + bytes(range(200)))
    with pytest.raises(ImageError, match="truncated or corrupt PNG"):
        load_image(data)


def test_png_bomb_with_huge_declared_dimensions_is_refused() -> None:
    # 30000x30000 declared, a few hundred bytes on disk: refused from the header alone.
    data = _png(30000, 30000, 8, 0, zlib.compress(b"\x00" * 30001))
    assert len(data) < 1000
    with pytest.raises(ImageError, match=r"30000x30000 = 900 MP, over the 50 MP limit"):
        load_image(data)


def test_png_bomb_is_refused_even_with_a_very_high_limit() -> None:
    # Our limit raised beyond Pillow's own bomb guard: Pillow's guard still refuses before decoding.
    data = _png(30000, 30000, 8, 0, zlib.compress(b"\x00" * 30001))
    with pytest.raises(
        ImageError, match=r"image is 900 MP, over Pillow's decompression-bomb limit of 179 MP"
    ):
        load_image(data, max_pixels=10**10)


def test_genuine_zlib_streamed_png_bomb_is_refused(tmp_path: Path) -> None:
    # A real, complete, valid 10000x8000 PNG (80 MP, 80 MB of pixels) that is tiny on disk.
    data = _streamed_blank_png(10000, 8000)
    assert len(data) < 200_000
    path = _write(tmp_path, "bomb.png", data)
    with pytest.raises(ImageError, match=r"10000x8000 = 80 MP, over the 50 MP limit"):
        load_image(path)


def _patch_tiff_size(data: bytearray, width: int, height: int) -> None:
    (ifd,) = struct.unpack_from("<I", data, 4)
    (count,) = struct.unpack_from("<H", data, ifd)
    for i in range(count):
        entry = ifd + 2 + 12 * i
        tag, typ = struct.unpack_from("<HH", data, entry)
        if tag in (256, 257):
            struct.pack_into("<H" if typ == 3 else "<I", data, entry + 8, width if tag == 256 else height)


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "BMP", "TIFF", "WEBP"])
def test_huge_declared_dimensions_are_refused(face_rgb: np.ndarray, fmt: str) -> None:
    small = Image.fromarray(np.ascontiguousarray(face_rgb[:40, :40]))
    data = bytearray(_encode(small, fmt, **({"lossless": True} if fmt == "WEBP" else {})))
    expected = r"20000x20000 = 400 MP, over the 50 MP limit"
    if fmt == "JPEG":
        sof = data.index(b"\xff\xc0")
        struct.pack_into(">HH", data, sof + 5, 20000, 20000)  # height, width
    elif fmt == "PNG":
        body = struct.pack(">II", 20000, 20000) + bytes(data[24:29])
        data[16:29] = body
        data[29:33] = struct.pack(">I", zlib.crc32(b"IHDR" + body))
    elif fmt == "BMP":
        struct.pack_into("<ii", data, 18, 20000, 20000)  # BITMAPINFOHEADER width, height
    elif fmt == "TIFF":
        assert data[:2] == b"II"
        _patch_tiff_size(data, 20000, 20000)
    else:
        assert data[12:16] == b"VP8L"  # lossless bitstream: 14-bit width-1, height-1 after 0x2F
        bits = int.from_bytes(data[21:25], "little") & ~((1 << 28) - 1)
        data[21:25] = (bits | 15999 | (15999 << 14)).to_bytes(4, "little")
        expected = r"16000x16000 = 256 MP, over the 50 MP limit"
    with pytest.raises(ImageError, match=expected):
        load_image(bytes(data))


def test_pixel_limit_from_settings_and_override(face_rgb: np.ndarray) -> None:
    data = encode_png(face_rgb)  # 180x210 = 37800 pixels
    with pytest.raises(ImageError, match=r"180x210 = 37800 pixels, over the 10000 pixels limit"):
        load_image(data, Settings(max_pixels=10_000))
    with pytest.raises(ImageError, match="over the 37799 pixels limit"):
        load_image(data, max_pixels=37_799)
    assert load_image(data, max_pixels=37_800).pixels.shape == (210, 180, 3)


def test_animated_gif_is_refused(tmp_path: Path) -> None:
    frames = [Image.new("RGB", (16, 16), c) for c in ((255, 0, 0), (0, 255, 0), (0, 0, 255))]
    buf = io.BytesIO()
    frames[0].save(buf, format="GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    path = _write(tmp_path, "clip.gif", buf.getvalue())
    with pytest.raises(ImageError, match="animated GIF is not accepted"):
        load_image(path)


def test_still_gif_is_refused() -> None:
    data = _encode(Image.new("P", (16, 16), 3), "GIF")
    with pytest.raises(ImageError, match=r"GIF is not accepted \(accepted: JPEG, PNG, BMP, TIFF, WebP\)"):
        load_image(data)


def test_gif_renamed_png_is_refused_by_content(tmp_path: Path) -> None:
    path = _write(tmp_path, "looks_fine.png", _encode(Image.new("L", (8, 8), 9), "GIF"))
    with pytest.raises(ImageError, match="GIF is not accepted"):
        load_image(path)


def _multi_frame(fmt: str) -> bytes:
    frames = [Image.new("RGB", (16, 16), c) for c in ((255, 0, 0), (0, 255, 0))]
    buf = io.BytesIO()
    frames[0].save(buf, format=fmt, save_all=True, append_images=frames[1:])
    return buf.getvalue()


@pytest.mark.parametrize(
    ("fmt", "message"),
    [
        ("PNG", r"animated PNG \(2 frames\) is not accepted"),
        ("WEBP", r"animated WebP \(2 frames\) is not accepted"),
        ("TIFF", r"multi-page TIFF \(2 pages\) is not accepted"),
    ],
)
def test_multi_frame_images_are_refused(fmt: str, message: str) -> None:
    with pytest.raises(ImageError, match=message):
        load_image(_multi_frame(fmt))


@pytest.mark.parametrize("use_path", [True, False])
def test_oversize_file_is_refused(tmp_path: Path, face_bytes: bytes, use_path: bool) -> None:
    source: Path | bytes = _write(tmp_path, "face.jpg", face_bytes) if use_path else face_bytes
    with pytest.raises(ImageError, match=r"is \d+(\.\d)? KB, over the 1 KB limit"):
        load_image(source, max_bytes=1024)
    with pytest.raises(ImageError, match="over the 2 KB limit"):
        load_image(source, Settings(max_file_bytes=2048))
    assert load_image(source, max_bytes=len(face_bytes)).size_bytes == len(face_bytes)


def test_default_size_limit_message_in_megabytes(tmp_path: Path) -> None:
    # A sparse 61 MB file: the size is refused from stat() before anything is read.
    path = tmp_path / "big.jpg"
    with path.open("wb") as fh:
        fh.truncate(int(61.2 * 1024 * 1024))
    with pytest.raises(ImageError, match=r"is 61.2 MB, over the 50 MB limit"):
        load_image(path, Settings())


@pytest.mark.parametrize("bad", [42, None, 3.5, ["a.jpg"], {"path": "a.jpg"}])
def test_wrong_python_type_is_a_clear_type_error(bad: object) -> None:
    with pytest.raises(TypeError, match=f"file path .* or the image bytes, not {type(bad).__name__}"):
        load_image(bad)  # type: ignore[arg-type]


def test_missing_path_and_directory_name_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "probe.jpg"
    with pytest.raises(ImageError, match=f"image file not found: {missing}"):
        load_image(missing)
    with pytest.raises(ImageError, match=f"{tmp_path} is a directory"):
        load_image(tmp_path)
    with pytest.raises(ImageError, match="no image path"):
        load_image("  ")


def test_device_file_is_refused() -> None:
    with pytest.raises(ImageError, match="not a regular file"):
        load_image("/dev/zero")


def test_global_load_truncated_images_switch_is_not_tolerated(
    monkeypatch: pytest.MonkeyPatch, face_bytes: bytes
) -> None:
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)
    with pytest.raises(ConfigurationError, match="LOAD_TRUNCATED_IMAGES"):
        load_image(face_bytes)


def test_invalid_limits_are_rejected(face_bytes: bytes) -> None:
    with pytest.raises(ValueError, match="max_bytes must be a positive integer"):
        load_image(face_bytes, max_bytes=0)
    with pytest.raises(ValueError, match="max_pixels must be a positive integer"):
        load_image(face_bytes, max_pixels=-5)


# --------------------------------------------------------------------------- accepted input


def test_real_jpeg_and_sha256_of_original_bytes(tmp_path: Path, face_bytes: bytes) -> None:
    path = _write(tmp_path, "face.jpg", face_bytes)
    img = load_image(path)
    assert img.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert img.format == "JPEG"
    assert (img.width, img.height, img.size_bytes) == (250, 250, len(face_bytes))
    assert img.pixels.shape == (250, 250, 3)
    assert img.pixels.dtype == np.uint8
    assert img.pixels.flags["C_CONTIGUOUS"]
    assert load_image(face_bytes).sha256 == img.sha256
    assert load_image(bytearray(face_bytes)).sha256 == img.sha256
    assert load_image(str(path)).sha256 == img.sha256
    # The pixels are what Pillow decodes from this JPEG.
    with Image.open(FACE_JPEG) as ref:
        np.testing.assert_array_equal(img.pixels, np.asarray(ref.convert("RGB")))


def test_format_comes_from_content_not_name(tmp_path: Path, face_rgb: np.ndarray) -> None:
    path = _write(tmp_path, "actually_png.jpg", encode_png(face_rgb))
    img = load_image(path)
    assert img.format == "PNG"
    np.testing.assert_array_equal(img.pixels, face_rgb)


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "BMP", "TIFF", "WEBP"])
def test_one_pixel_image_is_accepted(fmt: str) -> None:
    img = load_image(_encode(Image.new("RGB", (1, 1), (200, 30, 40)), fmt))
    assert img.pixels.shape == (1, 1, 3)
    assert (img.width, img.height) == (1, 1)
    assert np.abs(img.pixels[0, 0].astype(int) - [200, 30, 40]).max() <= 12  # JPEG/WebP are lossy


@pytest.mark.parametrize(
    ("fmt", "kwargs"),
    [
        ("PNG", {}),
        ("BMP", {}),
        ("TIFF", {}),
        ("TIFF", {"compression": "tiff_lzw"}),
        ("TIFF", {"compression": "tiff_deflate"}),
        ("WEBP", {"lossless": True}),
    ],
)
def test_lossless_round_trips(face_rgb: np.ndarray, fmt: str, kwargs: dict[str, object]) -> None:
    data = _encode(Image.fromarray(face_rgb), fmt, **kwargs)
    assert image_format(data) == fmt
    img = load_image(data)
    assert img.format == fmt
    assert img.sha256 == hashlib.sha256(data).hexdigest()
    np.testing.assert_array_equal(img.pixels, face_rgb)


def test_lossy_webp_round_trip(face_rgb: np.ndarray) -> None:
    img = load_image(_encode(Image.fromarray(face_rgb), "WEBP", quality=90))
    assert img.format == "WEBP"
    assert np.abs(img.pixels.astype(int) - face_rgb).mean() < 4


def test_grayscale_becomes_equal_rgb_channels(face_rgb: np.ndarray) -> None:
    gray = np.asarray(Image.fromarray(face_rgb).convert("L"))
    img = load_image(encode_png(gray))
    assert img.pixels.shape == (*gray.shape, 3)
    for c in range(3):
        np.testing.assert_array_equal(img.pixels[..., c], gray)


def test_one_bit_image() -> None:
    bits = Image.new("1", (10, 4), 0)
    bits.putpixel((3, 2), 1)
    img = load_image(_encode(bits, "PNG"))
    assert img.pixels[2, 3].tolist() == [255, 255, 255]
    assert img.pixels[0, 0].tolist() == [0, 0, 0]


def test_sixteen_bit_grayscale_png_is_scaled_not_clipped() -> None:
    values = np.array([[0, 257, 1000, 32896, 50000, 65535]], dtype=np.uint16)
    data = _png(6, 1, 16, 0, zlib.compress(b"\x00" + values.astype(">u2").tobytes()))
    assert data[24] == 16  # IHDR bit depth: a real 16-bit PNG
    img = load_image(data)
    assert img.pixels[0, :, 0].tolist() == [0, 1, 4, 128, 195, 255]
    assert (img.pixels[..., 0] == img.pixels[..., 2]).all()


def test_sixteen_bit_png_written_by_pillow() -> None:
    ramp = (np.arange(256, dtype=np.uint32) * 257).astype(np.uint16).reshape(16, 16)
    data = _encode(Image.fromarray(ramp), "PNG")
    assert data[24] == 16
    img = load_image(data)
    np.testing.assert_array_equal(img.pixels[..., 1], np.arange(256, dtype=np.uint8).reshape(16, 16))


def test_sixteen_bit_rgb_png() -> None:
    rgb = np.array([[[65535, 0, 0], [0, 32896, 0], [0, 0, 257 * 77]]], dtype=np.uint16)
    rows = b"\x00" + rgb.astype(">u2").tobytes()
    img = load_image(_png(3, 1, 16, 2, zlib.compress(rows)))
    assert img.pixels[0].tolist() == [[255, 0, 0], [0, 128, 0], [0, 0, 77]]


def test_sixteen_bit_tiff() -> None:
    ramp = (np.arange(64, dtype=np.uint32) * 1000).astype(np.uint16).reshape(8, 8)
    img = load_image(_encode(Image.fromarray(ramp), "TIFF"))
    np.testing.assert_array_equal(img.pixels[..., 0], np.rint(ramp / 257.0).astype(np.uint8))


def test_float_tiff_in_unit_range() -> None:
    f = np.linspace(0.0, 1.0, 16, dtype=np.float32).reshape(4, 4)
    img = load_image(_encode(Image.fromarray(f, mode="F"), "TIFF"))
    np.testing.assert_array_equal(img.pixels[..., 0], np.rint(f * 255).astype(np.uint8))


@pytest.mark.parametrize(
    ("cmyk", "rgb"),
    [
        ((0, 255, 255, 0), (255, 0, 0)),  # red
        ((255, 255, 0, 0), (0, 0, 255)),  # blue
        ((0, 0, 0, 0), (255, 255, 255)),  # white
        ((0, 0, 0, 255), (0, 0, 0)),  # black
    ],
)
def test_cmyk_jpeg_keeps_its_colours(cmyk: tuple[int, int, int, int], rgb: tuple[int, int, int]) -> None:
    data = _encode(Image.new("CMYK", (32, 24), cmyk), "JPEG", quality=95)
    assert b"Adobe" in data  # Pillow writes Adobe-inverted CMYK, the common real-world variant
    img = load_image(data)
    assert img.pixels.shape == (24, 32, 3)
    assert np.abs(img.pixels.reshape(-1, 3).astype(int) - rgb).max() <= 6


def test_palette_with_transparency_is_flattened_on_white() -> None:
    pal = Image.new("P", (4, 2), 0)
    pal.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)  # 0 = red (made transparent), 1 = blue
    pal.putpixel((1, 1), 1)
    data = _encode(pal, "PNG", transparency=0)
    img = load_image(data)
    assert img.pixels[0, 0].tolist() == [255, 255, 255]  # transparent red -> white, not red or black
    assert img.pixels[1, 1].tolist() == [0, 0, 255]


def test_rgba_alpha_is_composited_on_white() -> None:
    rgba = np.zeros((2, 3, 4), dtype=np.uint8)
    rgba[0, 0] = [10, 20, 30, 255]  # opaque
    rgba[0, 1] = [0, 0, 0, 0]  # fully transparent (colour values must not leak)
    rgba[0, 2] = [0, 0, 0, 128]  # half-transparent black
    rgba[1, :] = [200, 0, 0, 0]  # transparent red
    img = load_image(_encode(Image.fromarray(rgba, mode="RGBA"), "PNG"))
    assert img.pixels[0, 0].tolist() == [10, 20, 30]
    assert img.pixels[0, 1].tolist() == [255, 255, 255]
    assert img.pixels[0, 2].tolist() == [127, 127, 127]
    assert (img.pixels[1] == 255).all()


def test_gray_with_alpha() -> None:
    la = Image.fromarray(np.array([[[40, 255], [40, 0]]], dtype=np.uint8), mode="LA")
    img = load_image(_encode(la, "PNG"))
    assert img.pixels[0].tolist() == [[40, 40, 40], [255, 255, 255]]


# Pillow transpose that, applied to the upright picture, gives the stored pixels for an orientation.
_STORE_FOR_ORIENTATION = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_90,  # stored turned left; the camera says "rotate 90° CW to view"
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_270,
}


@pytest.mark.parametrize("orientation", sorted(_STORE_FOR_ORIENTATION))
@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_exif_rotated_photo_comes_back_upright(face_rgb: np.ndarray, orientation: int, fmt: str) -> None:
    upright = Image.fromarray(face_rgb)
    stored = upright.transpose(_STORE_FOR_ORIENTATION[orientation])
    exif = Image.Exif()
    exif[0x0112] = orientation
    data = _encode(stored, fmt, exif=exif.tobytes(), **({"quality": 97} if fmt == "JPEG" else {}))
    img = load_image(data)
    assert img.pixels.shape == face_rgb.shape
    assert (img.width, img.height) == (face_rgb.shape[1], face_rgb.shape[0])
    error = np.abs(img.pixels.astype(int) - face_rgb).mean()
    assert error < (3.0 if fmt == "JPEG" else 0.001)
    # Sanity: the stored pixels really differ from the upright photo.
    stored_arr = np.asarray(stored)
    if stored_arr.shape == face_rgb.shape:
        assert np.abs(stored_arr.astype(int) - face_rgb).mean() > 15


# --------------------------------------------------------------------------- helpers for others


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"\xff\xd8\xff\xe0\x00\x10JFIF", "JPEG"),
        (b"\x89PNG\r\n\x1a\n\x00\x00", "PNG"),
        (b"II*\x00\x08\x00\x00\x00", "TIFF"),
        (b"MM\x00*\x00\x00\x00\x08", "TIFF"),
        (b"RIFF\x10\x00\x00\x00WEBPVP8 ", "WEBP"),
        (b"BM" + bytes(12) + struct.pack("<I", 40) + bytes(8), "BMP"),
        (b"BM" + bytes(12) + struct.pack("<I", 7) + bytes(8), None),
        (b"GIF89a\x01\x00", None),
        (b"RIFF\x10\x00\x00\x00WAVEfmt ", None),
        (b"hello", None),
        (b"", None),
    ],
)
def test_image_format_sniffing(data: bytes, expected: str | None) -> None:
    assert image_format(data) == expected


def test_encode_png_and_jpeg_round_trip(face_rgb: np.ndarray) -> None:
    png = encode_png(face_rgb)
    assert image_format(png) == "PNG"
    np.testing.assert_array_equal(load_image(png).pixels, face_rgb)
    jpg = encode_jpeg(face_rgb, quality=95)
    assert image_format(jpg) == "JPEG"
    assert np.abs(load_image(jpg).pixels.astype(int) - face_rgb).mean() < 3
    assert len(encode_jpeg(face_rgb, quality=30)) < len(jpg)
    gray = face_rgb[..., 0].copy()
    np.testing.assert_array_equal(load_image(encode_png(gray)).pixels[..., 2], gray)


def test_encoders_refuse_bad_arrays(face_rgb: np.ndarray) -> None:
    with pytest.raises(ImageError, match="dtype float"):
        encode_png(face_rgb.astype(np.float32))
    with pytest.raises(ImageError, match=r"shape \(4, 4, 4\)"):
        encode_jpeg(np.zeros((4, 4, 4), dtype=np.uint8))
    with pytest.raises(ValueError, match="quality"):
        encode_jpeg(face_rgb, quality=0)


def test_mpo_jpeg_uses_the_primary_picture() -> None:
    # Phones and stereo cameras write MPO: a JPEG followed by further JPEGs. Every viewer shows the first.
    frames = [Image.new("RGB", (24, 16), c) for c in ((220, 20, 20), (20, 20, 220))]
    buf = io.BytesIO()
    frames[0].save(buf, format="MPO", save_all=True, append_images=frames[1:])
    data = buf.getvalue()
    assert data.count(b"\xff\xd8\xff") >= 2
    img = load_image(data)
    assert img.format == "JPEG"
    assert img.pixels.shape == (16, 24, 3)
    assert np.abs(img.pixels.reshape(-1, 3).astype(int) - [220, 20, 20]).max() <= 8


@pytest.mark.parametrize(
    ("fmt", "kwargs"),
    [
        ("JPEG", {}),
        ("JPEG", {"progressive": True}),
        ("PNG", {}),
        ("BMP", {}),
        ("TIFF", {"compression": "tiff_lzw"}),
        ("WEBP", {"lossless": True}),
        ("WEBP", {"quality": 80}),
    ],
)
@pytest.mark.filterwarnings("ignore:Corrupt EXIF data:UserWarning")  # Pillow's note on damaged TIFF tags
def test_mutated_files_never_crash(face_rgb: np.ndarray, fmt: str, kwargs: dict[str, object]) -> None:
    """Seeded random corruption: every outcome is a loaded RGB image or an ImageError, nothing else."""
    base = _encode(Image.fromarray(np.ascontiguousarray(face_rgb[:96, :80])), fmt, **kwargs)
    rng = np.random.default_rng(sum(base[:64]))
    refused = 0
    for _ in range(60):
        data = bytearray(base)
        for pos in rng.integers(0, len(data), size=int(rng.integers(1, 9))):
            data[int(pos)] = int(rng.integers(0, 256))
        if rng.random() < 0.25:
            data = data[: int(rng.integers(0, len(data)))]
        try:
            img = load_image(bytes(data))
        except ImageError as exc:
            refused += 1
            assert str(exc)
        else:
            assert img.pixels.dtype == np.uint8
            assert img.pixels.ndim == 3
            assert img.pixels.shape[2] == 3
    assert refused > 0  # the corruption really reached the checks


# --------------------------------------------------------------------------- reduced decoding, decode budget


def _solid_png(width: int, height: int, rgb: tuple[int, int, int] = (90, 120, 150)) -> bytes:
    """A genuine single-colour RGB PNG, small on disk, compressed row by row (7000x7000 is about 143 KB)."""
    comp = zlib.compressobj(9)
    row = b"\x00" + bytes(rgb) * width
    idat = b"".join(comp.compress(row) for _ in range(height)) + comp.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")


def test_a_huge_small_png_is_decoded_reduced_where_allowed() -> None:
    """The 143 KB PNG of 7000x7000: decoded at most reduce_to pixels, original size and hash kept."""
    data = _solid_png(7000, 7000)
    assert len(data) < 200_000
    loaded = load_image(data, reduce_to=24_000_000)
    assert loaded.pixels.shape == (3500, 3500, 3) and loaded.scale == 2.0
    assert (loaded.width, loaded.height) == (7000, 7000)
    assert loaded.sha256 == hashlib.sha256(data).hexdigest()
    assert tuple(loaded.pixels[1000, 2000]) == (90, 120, 150)
    assert load_image(_solid_png(300, 200), reduce_to=24_000_000).scale == 1.0  # small pictures untouched


def test_large_jpeg_decoded_at_reduced_scale_keeps_orientation() -> None:
    """JPEG is decoded reduced by libjpeg (draft); an EXIF quarter turn still swaps the reported sides."""
    face = np.asarray(Image.open(FACE_JPEG).convert("RGB").resize((6000, 4500)))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to display
    buf = io.BytesIO()
    Image.fromarray(face).save(buf, format="JPEG", quality=80, exif=exif.tobytes())
    loaded = load_image(buf.getvalue(), reduce_to=8_000_000)
    assert (loaded.width, loaded.height) == (4500, 6000)  # upright, original size
    assert loaded.pixels.shape[0] > loaded.pixels.shape[1]  # decoded upright too
    assert loaded.pixels.shape[0] * loaded.pixels.shape[1] <= 8_000_000
    assert loaded.scale == pytest.approx(4500 / loaded.pixels.shape[1])


@pytest.mark.parametrize("mode", ["P", "1", "I;16", "LA", "P+transparency"])
def test_reduced_decoding_of_every_mode(mode: str) -> None:
    base = Image.new("RGB", (3000, 2000), (200, 30, 30))
    img = {"P": lambda: base.convert("P"), "1": lambda: base.convert("1"),
           "I;16": lambda: Image.new("I;16", (3000, 2000), 40000), "LA": lambda: base.convert("LA"),
           "P+transparency": lambda: base.convert("P")}[mode]()  # fmt: skip
    buf = io.BytesIO()
    img.save(buf, format="PNG", **({"transparency": 3} if mode == "P+transparency" else {}))
    loaded = load_image(buf.getvalue(), reduce_to=1_500_000)
    assert loaded.pixels.shape == (1000, 1500, 3) and loaded.scale == 2.0
    full = load_image(buf.getvalue()).pixels.astype(np.float64)
    averaged = full.reshape(1000, 2, 1500, 2, 3).mean(axis=(1, 3))  # what a 2x2 box filter gives
    assert np.abs(loaded.pixels - averaged).max() <= 1.5


def test_decode_budget_bounds_concurrent_decodes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Six threads decode 16 MP pictures with a budget of 40 MP: never more than two decode at once."""
    import threading

    from faceleads.vision import imaging

    settings = Settings(decode_budget_pixels=40_000_000)
    budget = imaging.decode_budget(40_000_000)
    budget.peak = 0
    data = _solid_png(4000, 4000)
    errors: list[BaseException] = []

    def work() -> None:
        try:
            load_image(data, settings)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and budget.in_use == 0
    assert 16_000_000 <= budget.peak <= 32_000_000


def test_decode_budget_refuses_after_waiting_too_long() -> None:
    from faceleads.vision.imaging import DecodeBudget

    budget = DecodeBudget(10)
    with (
        budget.hold(10, timeout=1),
        pytest.raises(ImageError, match="too many large pictures"),
        budget.hold(1, timeout=0.05),
    ):
        pass
    with budget.hold(1000, timeout=0.05):  # one picture over the capacity still gets through on its own
        assert budget.in_use == 10
