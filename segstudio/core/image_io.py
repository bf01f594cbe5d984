"""Read any image a user has into one canonical form; read and write label masks.

:func:`read_image` accepts PNG, JPEG, BMP, TIFF (first page of a multi-page
file, with a note), WebP; 8- and 16-bit; gray, RGB, RGBA (alpha dropped with a
note) and palette images; applies the EXIF orientation; and works with any file
name (the bytes are read by Python, never by a C library given the path). The
format is recognised from the file's first bytes, not its name. Everything that
goes wrong becomes an :class:`ImageReadError` naming the file and the reason.
"""

from __future__ import annotations

import contextlib
import io
import os
import threading
import warnings
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError

from segstudio.core.atomic import atomic_write_bytes
from segstudio.core.regular_file import NotRegularFileError, open_regular, read_regular_bytes

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")

DEFAULT_MAX_PIXELS = 250_000_000
"""Images larger than this (250 Mpx, 0.75 GB as RGB) are refused before decoding.

Override with the environment variable ``SEGSTUDIO_MAX_PIXELS``.
"""

PLAUSIBLE_PIXELS_PER_BYTE = {"jpeg": 1_000, "webp": 20_000}
"""The most pixels one byte of a JPEG or WebP file is taken to hold (a solid-colour 4000×4000 image reaches 85
as JPEG and 23 600 as lossless WebP; photos and scans stay below 50). Their decoders allocate the size the
header claims and fill in what the data lacks, so a 700-byte file claiming 15000×15000 pixels took 2.2 GB
(JPEG) or 3.9 GB (WebP); it is refused by this bound first. PNG, TIFF and BMP decoders stop at the missing data;
an image whose data really holds that many pixels is bounded by the pixel limit (:data:`DEFAULT_MAX_PIXELS`)."""

_EXIF_ORIENTATION = 0x0112

T = TypeVar("T")


class ImageReadError(Exception):
    """An image that cannot be read: missing, empty, truncated, corrupt, unsupported or too large."""

    def __init__(self, path: Path | str, reason: str) -> None:
        super().__init__(f"cannot read {path}: {reason}")
        self.path = Path(path)
        self.reason = reason


@dataclass
class LoadedImage:
    """An image in canonical form.

    ``display``: H×W×3 uint8 RGB for the screen (16-bit data contrast-stretched).
    ``data``: H×W×C in the file's own depth (uint8 or uint16), C = 1 (gray) or 3 (RGB),
    for the network's normalisation, which divides by ``max_value``.
    """

    path: Path
    display: np.ndarray
    data: np.ndarray
    format: str
    max_value: float
    notes: list[str] = field(default_factory=list)

    @property
    def height(self) -> int:
        return int(self.data.shape[0])

    @property
    def width(self) -> int:
        return int(self.data.shape[1])

    @property
    def channels(self) -> int:
        return int(self.data.shape[2])

    @property
    def bit_depth(self) -> int:
        return 16 if self.data.dtype == np.uint16 else 8


def max_pixels() -> int:
    try:
        return int(os.environ.get("SEGSTUDIO_MAX_PIXELS", DEFAULT_MAX_PIXELS))
    except ValueError:
        return DEFAULT_MAX_PIXELS


def sniff_format(head: bytes) -> str | None:
    """The image format from a file's first bytes: 'png', 'jpeg', 'bmp', 'tiff', 'webp' or None."""
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head.startswith(b"BM"):
        return "bmp"
    if head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return "tiff"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    return None


def list_images(folder: Path | str, recursive: bool = False) -> list[Path]:
    """Image files in ``folder`` (by suffix, case-insensitive), sorted, hidden files skipped.

    A FIFO or device with an image's name is listed too (not folders, not broken
    links): reading it then fails with a clear reason instead of it silently not counting.
    """
    root = Path(folder)
    it: Iterable[Path] = root.rglob("*") if recursive else root.iterdir()
    found = [
        p for p in it
        if p.suffix.lower() in IMAGE_SUFFIXES and p.exists() and not p.is_dir()
        and not any(part.startswith(".") for part in p.relative_to(root).parts)
    ]
    return sorted(found)


def _read_bytes(path: Path) -> bytes:
    try:
        data = read_regular_bytes(path)
    except FileNotFoundError:
        raise ImageReadError(path, "the file does not exist") from None
    except NotRegularFileError as exc:
        raise ImageReadError(path, f"{exc.strerror}; segstudio reads images from regular files only") from None
    except OSError as exc:
        raise ImageReadError(path, exc.strerror or str(exc)) from None
    if not data:
        raise ImageReadError(path, "the file is empty (0 bytes)")
    return data


def _describe_head(data: bytes) -> str:
    head = data[:16]
    if all(32 <= b < 127 or b in (9, 10, 13) for b in head):
        return f"it starts with the text {head.decode('ascii', 'replace')!r}"
    return f"it starts with bytes {head[:8].hex(' ')}"


_pil_limit_lock = threading.Lock()
_pil_limit_users = 0
_pil_limit_saved: int | None = None


@contextlib.contextmanager
def _without_pil_pixel_limit() -> Iterator[None]:
    """Lift Pillow's decompression-bomb limit while we read: we apply our own, with a clearer message.

    Pillow's limit is a global; a use count under a lock restores it only when the
    last concurrent reader is done, so threads reading images cannot leave it lifted.
    """
    global _pil_limit_users, _pil_limit_saved
    with _pil_limit_lock:
        if _pil_limit_users == 0:
            _pil_limit_saved = Image.MAX_IMAGE_PIXELS
            Image.MAX_IMAGE_PIXELS = None
        _pil_limit_users += 1
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        with _pil_limit_lock:
            _pil_limit_users -= 1
            if _pil_limit_users == 0:
                Image.MAX_IMAGE_PIXELS = _pil_limit_saved


def _png_orientation(data: bytes) -> int:
    """EXIF orientation from a PNG's eXIf chunk, found by walking chunk headers (no pixel is decoded).

    Pillow's ``getexif()`` on a PNG decodes the whole image to look for an eXIf
    chunk after the pixel data; this reads only the chunk headers in ``data``.
    """
    pos = 8
    while pos + 8 <= len(data):
        length = int.from_bytes(data[pos:pos + 4], "big")
        kind = data[pos + 4:pos + 8]
        if kind == b"eXIf":
            payload = data[pos + 8:pos + 8 + length]
            try:
                exif = Image.Exif()
                exif.load(payload)
                return int(exif.get(_EXIF_ORIENTATION, 1) or 1)
            except Exception:  # a broken EXIF block must not make the image unreadable
                return 1
        if kind == b"IEND":
            break
        pos += 12 + length
    return 1


def _header(path: Path, data: bytes, fmt: str) -> tuple[int, int, int]:
    """(width, height, EXIF orientation) from the header, without decoding pixels."""
    try:
        with _without_pil_pixel_limit(), Image.open(io.BytesIO(data)) as im:
            w, h = im.size
            orientation = 1
            if fmt == "png":
                orientation = _png_orientation(data)
            elif fmt in ("jpeg", "webp", "tiff"):
                try:
                    orientation = int(im.getexif().get(_EXIF_ORIENTATION, 1) or 1)
                except Exception:  # a broken EXIF block must not make the image unreadable
                    orientation = 1
    except UnidentifiedImageError:
        if fmt == "tiff":  # TIFF variants Pillow cannot open (e.g. exotic compression) may still suit tifffile
            return _tiff_header(path, data)
        raise ImageReadError(path, f"the {fmt.upper()} header is truncated or corrupt") from None
    except (OSError, SyntaxError, ValueError) as exc:
        if fmt == "tiff":
            return _tiff_header(path, data)
        raise ImageReadError(path, f"the {fmt.upper()} file is truncated or corrupt ({exc})") from None
    if orientation not in range(1, 9):
        orientation = 1
    return w, h, orientation


def _tiff_header(path: Path, data: bytes) -> tuple[int, int, int]:
    import tifffile

    try:
        with tifffile.TiffFile(io.BytesIO(data)) as tif:
            page = tif.pages[0]
            shape = page.shape  # type: ignore[union-attr]
            axes = getattr(page, "axes", "")
            tag = page.tags.get(274)  # type: ignore[union-attr]
            value = tag.value if tag is not None else 1
            orientation = value if isinstance(value, int) and 1 <= value <= 8 else 1
    except Exception as exc:  # tifffile raises many types for broken files
        raise ImageReadError(path, f"the TIFF header is truncated or corrupt ({exc})") from None
    y, x = axes.find("Y"), axes.find("X")
    if y < 0 or x < 0:
        raise ImageReadError(path, f"unsupported TIFF layout (axes {axes!r})")
    return int(shape[x]), int(shape[y]), orientation


def _apply_orientation(a: np.ndarray, orientation: int) -> np.ndarray:
    """Rotate/flip so that the image shows upright (EXIF orientation 1..8)."""
    if orientation == 2:
        a = a[:, ::-1]
    elif orientation == 3:
        a = a[::-1, ::-1]
    elif orientation == 4:
        a = a[::-1]
    elif orientation == 5:
        a = np.swapaxes(a, 0, 1)
    elif orientation == 6:
        a = np.rot90(a, -1)
    elif orientation == 7:  # transverse: mirror across the anti-diagonal
        a = np.swapaxes(a, 0, 1)[::-1, ::-1]
    elif orientation == 8:
        a = np.rot90(a, 1)
    return np.ascontiguousarray(a)


def _decode_png(path: Path, data: bytes, notes: list[str]) -> np.ndarray:
    color_type = data[25] if len(data) > 25 else -1
    arr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if arr is None:
        raise ImageReadError(path, "the PNG data is truncated or corrupt")
    if arr.ndim == 3 and arr.shape[2] == 4:
        notes.append("alpha channel dropped")
        arr = arr[:, :, :3]
    if arr.ndim == 3:
        arr = arr[:, :, ::-1]  # BGR -> RGB
        if color_type in (0, 4):  # gray (+alpha) stored: keep one channel
            arr = arr[:, :, :1]
        elif color_type == 3:
            notes.append("palette image converted to RGB")
    return arr


def _decode_tiff(path: Path, data: bytes, notes: list[str]) -> np.ndarray:
    import tifffile

    try:
        with tifffile.TiffFile(io.BytesIO(data)) as tif:
            pages = len(tif.pages)
            page = tif.pages[0]
            arr = page.asarray()  # type: ignore[union-attr]
            axes = getattr(page, "axes", "")
    except Exception as exc:  # tifffile raises many types for broken files
        raise ImageReadError(path, f"the TIFF data is truncated or corrupt ({exc})") from None
    if pages > 1:
        notes.append(f"multi-page TIFF: page 1 of {pages} used")
    arr = np.asarray(arr)
    if arr.ndim == 3 and axes.startswith("S") and arr.shape[0] in (2, 3, 4):  # planar gray+alpha, RGB(A)
        arr = np.moveaxis(arr, 0, -1)
    return arr


def _decode_pil(path: Path, data: bytes, fmt: str, notes: list[str]) -> np.ndarray:
    try:
        with _without_pil_pixel_limit(), Image.open(io.BytesIO(data)) as opened:
            opened.load()
            im: Image.Image = opened
            if im.mode in ("P", "PA"):
                notes.append("palette image converted to RGB")
                im = im.convert("RGBA" if "transparency" in im.info or im.mode == "PA" else "RGB")
            elif im.mode == "CMYK":
                notes.append("CMYK image converted to RGB")
                im = im.convert("RGB")
            elif im.mode == "1":
                im = im.convert("L")
            arr = np.asarray(im)
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageReadError(path, f"the {fmt.upper()} data is truncated or corrupt ({exc})") from None
    if arr.ndim == 3 and arr.shape[2] in (2, 4):
        notes.append("alpha channel dropped")
        arr = arr[:, :, :-1]
    return arr


def _canonical_depth(path: Path, arr: np.ndarray, notes: list[str]) -> np.ndarray:
    if arr.dtype in (np.uint8, np.uint16):
        return arr
    if arr.dtype == bool:
        return arr.astype(np.uint8) * 255
    if arr.dtype.kind in "iuf":
        a = arr.astype(np.float64)
        finite = np.isfinite(a)
        if not finite.any():
            raise ImageReadError(path, "the image holds no finite values")
        lo, hi = float(a[finite].min()), float(a[finite].max())
        scaled = np.zeros_like(a) if hi <= lo else (np.clip(np.nan_to_num(a, nan=lo), lo, hi) - lo) / (hi - lo)
        notes.append(f"{arr.dtype} data scaled from [{lo:g}, {hi:g}] to 16-bit")
        return np.round(scaled * 65535).astype(np.uint16)
    raise ImageReadError(path, f"unsupported pixel type {arr.dtype}")


def to_display(data: np.ndarray) -> np.ndarray:
    """H×W×3 uint8 for the screen; 16-bit data is stretched between its 0.5 and 99.5 percentiles."""
    if data.dtype == np.uint16:
        sample = data[:: max(1, data.shape[0] // 512), :: max(1, data.shape[1] // 512)]
        lo, hi = np.percentile(sample, (0.5, 99.5))
        if hi <= lo:
            hi = lo + 1
        lut = np.clip((np.arange(65536, dtype=np.float32) - lo) * (255.0 / (hi - lo)), 0, 255).astype(np.uint8)
        data8 = lut[data]
    else:
        data8 = data
    if data8.shape[2] == 1:
        return np.repeat(data8, 3, axis=2)
    return np.ascontiguousarray(data8)


def _guarded(path: Path, what: str, read: Callable[[], T]) -> T:
    # Decoders are C libraries fed untrusted bytes; whatever they raise becomes one clear error type.
    try:
        return read()
    except ImageReadError:
        raise
    except MemoryError:
        raise ImageReadError(path, f"not enough memory to {what}") from None
    except Exception as exc:
        raise ImageReadError(path, f"could not {what} ({type(exc).__name__}: {exc})") from None


def read_image(path: Path | str, limit_pixels: int | None = None) -> LoadedImage:
    """Read ``path`` into a :class:`LoadedImage`; raise :class:`ImageReadError` on any problem."""
    p = Path(path)
    return _guarded(p, "decode the image", lambda: _read_image(p, limit_pixels))


def _read_image(p: Path, limit_pixels: int | None) -> LoadedImage:
    data = _read_bytes(p)
    fmt = sniff_format(data[:16])
    if fmt is None:
        raise ImageReadError(
            p, f"not a supported image (PNG, JPEG, BMP, TIFF or WebP): {_describe_head(data)}"
        )
    w, h, orientation = _header(p, data, fmt)
    limit = max_pixels() if limit_pixels is None else limit_pixels
    if w * h > limit:
        raise ImageReadError(
            p, f"the image is {w}×{h} ({w * h / 1e6:.0f} Mpx), more than the limit of {limit / 1e6:.0f} Mpx "
            "(set SEGSTUDIO_MAX_PIXELS to allow more)"
        )
    if w < 1 or h < 1:
        raise ImageReadError(p, f"the image has no pixels ({w}×{h})")
    per_byte = PLAUSIBLE_PIXELS_PER_BYTE.get(fmt)
    if per_byte is not None and w * h > per_byte * len(data):
        raise ImageReadError(
            p, f"the file is {len(data)} bytes, too small for the {w}×{h} pixels its header claims (a "
               f"{fmt.upper()} file holds at most {per_byte} pixels per byte): it is damaged or not what it says"
        )
    notes: list[str] = []
    if fmt == "png":
        arr = _decode_png(p, data, notes)
    elif fmt == "tiff":
        arr = _decode_tiff(p, data, notes)
    else:
        arr = _decode_pil(p, data, fmt, notes)
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if arr.ndim != 3 or arr.shape[0] < 1 or arr.shape[1] < 1:
        raise ImageReadError(p, f"unsupported image layout {arr.shape} (segstudio reads 2-D gray, RGB and RGBA)")
    if arr.shape[2] not in (1, 2, 3, 4):
        raise ImageReadError(
            p, f"the image has {arr.shape[2]} channels; segstudio reads gray, gray+alpha, RGB and RGBA"
        )
    if arr.shape[2] in (2, 4):  # gray+alpha or RGBA
        notes.append("alpha channel dropped")
        arr = arr[:, :, :-1]
    arr = _canonical_depth(p, arr, notes)
    if orientation != 1:
        arr = _apply_orientation(arr, orientation)
        notes.append(f"EXIF orientation {orientation} applied")
    arr = np.ascontiguousarray(arr)
    return LoadedImage(p, to_display(arr), arr, fmt, 65535.0 if arr.dtype == np.uint16 else 255.0, notes)


def image_size(path: Path | str) -> tuple[int, int]:
    """(height, width) from the header alone, after EXIF orientation."""
    p = Path(path)
    w, h, orientation = _guarded(p, "read the image header", lambda: _header_of(p))
    return (w, h) if orientation in (5, 6, 7, 8) else (h, w)


def stored_size(path: Path | str) -> tuple[int, int]:
    """(height, width) as stored in the header (no EXIF orientation): the size a mask file decodes to."""
    p = Path(path)
    w, h, _ = _guarded(p, "read the image header", lambda: _header_of(p))
    return h, w


def _header_of(p: Path) -> tuple[int, int, int]:
    try:
        with open_regular(p) as fh:
            head = fh.read(64 * 1024)
    except OSError as exc:
        raise ImageReadError(p, exc.strerror or str(exc)) from None
    fmt = sniff_format(head[:16])
    if fmt is None:
        if not head:
            raise ImageReadError(p, "the file is empty (0 bytes)")
        raise ImageReadError(p, f"not a supported image (PNG, JPEG, BMP, TIFF or WebP): {_describe_head(head)}")
    try:
        return _header(p, _read_bytes(p) if fmt == "tiff" else head, fmt)
    except ImageReadError:
        # A large metadata block (EXIF thumbnails, ICC profile) can push the size past the first 64 KiB.
        return _header(p, _read_bytes(p), fmt)


def read_mask(path: Path | str, shape: tuple[int, int] | None = None) -> np.ndarray:
    """Read an index-mask PNG (uint8 or uint16; palette PNGs give their indices, not colours).

    The size in the PNG header is checked before any pixel is decoded: against
    ``shape`` (height, width), the image the mask belongs to, when given, and
    always against the pixel limit (:func:`max_pixels`), so a small file that
    claims to be a giant mask is refused instead of allocated.
    """
    p = Path(path)
    return _guarded(p, "decode the mask", lambda: _read_mask(p, shape))


def png_size(data: bytes) -> tuple[int, int] | None:
    """(height, width) from a PNG's IHDR chunk, or None when the bytes do not start with one."""
    if len(data) < 24 or data[12:16] != b"IHDR":
        return None
    return int.from_bytes(data[20:24], "big"), int.from_bytes(data[16:20], "big")


def _read_mask(p: Path, shape: tuple[int, int] | None) -> np.ndarray:
    data = _read_bytes(p)
    if sniff_format(data[:16]) != "png":
        raise ImageReadError(p, f"a label mask must be a PNG file: {_describe_head(data)}")
    size = png_size(data)
    if size is None:
        raise ImageReadError(p, "the PNG header is truncated or corrupt")
    h, w = size
    if shape is not None and size != tuple(shape):
        raise ImageReadError(p, f"the mask is {w}×{h} but its image is {shape[1]}×{shape[0]}")
    limit = max_pixels()
    if h * w > limit:
        raise ImageReadError(p, f"the mask is {w}×{h} ({w * h / 1e6:.0f} Mpx), more than the limit of "
                                f"{limit / 1e6:.0f} Mpx (set SEGSTUDIO_MAX_PIXELS to allow more)")
    if h < 1 or w < 1:
        raise ImageReadError(p, f"the mask has no pixels ({w}×{h})")
    color_type = data[25] if len(data) > 25 else -1
    if color_type == 3:
        try:
            with _without_pil_pixel_limit(), Image.open(io.BytesIO(data)) as im:
                return np.array(im)
        except (OSError, ValueError) as exc:
            raise ImageReadError(p, f"the PNG data is truncated or corrupt ({exc})") from None
    arr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if arr is None:
        raise ImageReadError(p, "the PNG data is truncated or corrupt")
    if arr.ndim != 2:
        raise ImageReadError(p, f"a label mask must have one channel, this PNG has {arr.shape[2]}")
    return arr


def encode_mask_png(mask: np.ndarray, compression: int = 1) -> bytes:
    """PNG bytes of an index mask (uint8 or uint16)."""
    if mask.ndim != 2 or mask.dtype not in (np.uint8, np.uint16):
        raise ValueError(f"a mask is a 2-D uint8 or uint16 array, got {mask.dtype} {mask.shape}")
    params = [cv2.IMWRITE_PNG_COMPRESSION, compression]
    if hasattr(cv2, "IMWRITE_PNG_FILTER"):  # OpenCV >= 4.10
        # Label maps are coherent from row to row: the "up" filter alone encodes a 4k×4k label ~3× faster
        # than libpng's adaptive filter choice, and no larger (benchmarks/io_speed.py).
        params += [cv2.IMWRITE_PNG_FILTER, cv2.IMWRITE_PNG_FILTER_UP]
    ok, buf = cv2.imencode(".png", mask, params)
    if not ok:
        raise ValueError("PNG encoding failed")
    return buf.tobytes()


def write_mask(path: Path | str, mask: np.ndarray) -> None:
    """Write an index mask as PNG, atomically."""
    atomic_write_bytes(path, encode_mask_png(mask))
