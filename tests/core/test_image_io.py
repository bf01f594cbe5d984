"""image_io reads what users have into one canonical form, and fails clearly on everything else."""

from __future__ import annotations

import io
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
import tifffile
from PIL import Image, ImageOps

from segstudio.core.image_io import (
    ImageReadError,
    encode_mask_png,
    image_size,
    list_images,
    read_image,
    read_mask,
    write_mask,
)

REPO = Path(__file__).resolve().parents[2]


def _rgb(h: int = 20, w: int = 30, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def _png_header_only(w: int, h: int) -> bytes:
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", zlib.compress(b"\0" * 64))
            + _png_chunk(b"IEND", b""))


# ------------------------------------------------------------------ good files


def test_rgb_png_keeps_channel_order(tmp_path: Path) -> None:
    a = _rgb()
    a[0, 0] = (255, 0, 0)
    Image.fromarray(a).save(tmp_path / "a.png")
    im = read_image(tmp_path / "a.png")
    assert im.format == "png" and im.data.dtype == np.uint8 and im.data.shape == (20, 30, 3)
    np.testing.assert_array_equal(im.data, a)
    np.testing.assert_array_equal(im.display, a)
    assert im.max_value == 255 and im.bit_depth == 8 and im.notes == []


def test_gray_png_is_one_channel_and_displays_as_rgb(tmp_path: Path) -> None:
    g = _rgb()[:, :, 0]
    Image.fromarray(g).save(tmp_path / "g.png")
    im = read_image(tmp_path / "g.png")
    assert im.data.shape == (20, 30, 1) and im.channels == 1
    np.testing.assert_array_equal(im.data[:, :, 0], g)
    assert im.display.shape == (20, 30, 3)
    np.testing.assert_array_equal(im.display[:, :, 2], g)


def test_rgba_png_drops_alpha_with_a_note(tmp_path: Path) -> None:
    a = np.random.default_rng(1).integers(0, 256, (20, 30, 4), dtype=np.uint8)
    Image.fromarray(a).save(tmp_path / "a.png")
    im = read_image(tmp_path / "a.png")
    np.testing.assert_array_equal(im.data, a[:, :, :3])
    assert "alpha channel dropped" in im.notes


def test_gray_alpha_png_keeps_gray(tmp_path: Path) -> None:
    la = np.random.default_rng(2).integers(0, 256, (20, 30, 2), dtype=np.uint8)
    Image.fromarray(la, "LA").save(tmp_path / "la.png")
    im = read_image(tmp_path / "la.png")
    assert im.data.shape == (20, 30, 1)
    np.testing.assert_array_equal(im.data[:, :, 0], la[:, :, 0])
    assert "alpha channel dropped" in im.notes


@pytest.mark.parametrize("transparent", [False, True])
def test_palette_png_becomes_rgb(tmp_path: Path, transparent: bool) -> None:
    p = Image.fromarray(_rgb()).quantize(16)
    kwargs = {"transparency": 0} if transparent else {}
    p.save(tmp_path / "p.png", **kwargs)
    im = read_image(tmp_path / "p.png")
    np.testing.assert_array_equal(im.data, np.asarray(p.convert("RGB")))
    assert "palette image converted to RGB" in im.notes


def test_16bit_png_gray_and_rgb_keep_values(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    g16 = rng.integers(0, 65536, (20, 30), dtype=np.uint16)
    rgb16 = rng.integers(0, 65536, (20, 30, 3), dtype=np.uint16)
    cv2.imwrite(str(tmp_path / "g16.png"), g16)
    cv2.imwrite(str(tmp_path / "rgb16.png"), rgb16[:, :, ::-1])  # cv2 writes BGR
    g = read_image(tmp_path / "g16.png")
    c = read_image(tmp_path / "rgb16.png")
    assert g.data.dtype == np.uint16 and g.max_value == 65535 and g.bit_depth == 16
    np.testing.assert_array_equal(g.data[:, :, 0], g16)
    np.testing.assert_array_equal(c.data, rgb16)
    assert c.display.dtype == np.uint8 and c.display.shape == (20, 30, 3)


def test_16bit_display_is_stretched(tmp_path: Path) -> None:
    # A typical microscope image: 12-bit data in a 16-bit file, values 100..4000.
    g16 = np.linspace(100, 4000, 20 * 30).reshape(20, 30).astype(np.uint16)
    cv2.imwrite(str(tmp_path / "g.png"), g16)
    im = read_image(tmp_path / "g.png")
    assert im.display.min() == 0 and im.display.max() == 255


def test_one_bit_png(tmp_path: Path) -> None:
    Image.fromarray(_rgb()).convert("1").save(tmp_path / "bw.png")
    im = read_image(tmp_path / "bw.png")
    assert im.data.shape == (20, 30, 1) and set(np.unique(im.data)) <= {0, 255}


def test_one_by_one_image(tmp_path: Path) -> None:
    Image.fromarray(np.array([[[1, 2, 3]]], np.uint8)).save(tmp_path / "one.png")
    im = read_image(tmp_path / "one.png")
    assert im.data.shape == (1, 1, 3) and im.data[0, 0].tolist() == [1, 2, 3]
    assert image_size(tmp_path / "one.png") == (1, 1)


def test_jpeg_gray_rgb_cmyk(tmp_path: Path) -> None:
    a = _rgb()
    Image.fromarray(a).save(tmp_path / "c.jpg", quality=95)
    Image.fromarray(a).convert("L").save(tmp_path / "g.jpeg")
    Image.fromarray(a).convert("CMYK").save(tmp_path / "k.jpg")
    c = read_image(tmp_path / "c.jpg")
    assert c.format == "jpeg" and c.data.shape == (20, 30, 3)
    with Image.open(tmp_path / "c.jpg") as ref:
        np.testing.assert_array_equal(c.data, np.asarray(ref.convert("RGB")))
    assert read_image(tmp_path / "g.jpeg").data.shape == (20, 30, 1)
    k = read_image(tmp_path / "k.jpg")
    assert k.data.shape == (20, 30, 3) and "CMYK image converted to RGB" in k.notes


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_matches_pillow(tmp_path: Path, orientation: int) -> None:
    a = np.zeros((20, 30, 3), np.uint8)
    a[:5, :10] = (255, 0, 0)  # a red corner makes every flip/rotation visible
    a[-5:, -3:] = (0, 0, 255)
    exif = Image.Exif()
    exif[0x0112] = orientation
    path = tmp_path / f"o{orientation}.jpg"
    Image.fromarray(a).save(path, exif=exif.tobytes(), quality=100)
    im = read_image(path)
    with Image.open(path) as ref_im:
        ref = np.asarray(ImageOps.exif_transpose(ref_im))
    np.testing.assert_array_equal(im.data, ref)
    assert image_size(path) == ref.shape[:2]
    assert (f"EXIF orientation {orientation} applied" in im.notes) == (orientation != 1)


def test_exif_orientation_in_png_and_webp(tmp_path: Path) -> None:
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(_rgb()).save(tmp_path / "r.png", exif=exif.tobytes())
    Image.fromarray(_rgb()).save(tmp_path / "r.webp", exif=exif.tobytes(), lossless=True)
    for name in ("r.png", "r.webp"):
        im = read_image(tmp_path / name)
        assert im.data.shape == (30, 20, 3)
        np.testing.assert_array_equal(im.data, np.rot90(_rgb(), -1))


def test_bmp_rgb_and_palette(tmp_path: Path) -> None:
    a = _rgb()
    Image.fromarray(a).save(tmp_path / "a.bmp")
    Image.fromarray(a).quantize(8).save(tmp_path / "p.bmp")
    im = read_image(tmp_path / "a.bmp")
    assert im.format == "bmp"
    np.testing.assert_array_equal(im.data, a)
    p = read_image(tmp_path / "p.bmp")
    assert p.data.shape == (20, 30, 3) and "palette image converted to RGB" in p.notes


def test_webp_lossless_rgb_and_rgba(tmp_path: Path) -> None:
    a = _rgb()
    Image.fromarray(a).save(tmp_path / "a.webp", lossless=True)
    rgba = np.dstack([a, np.full((20, 30), 128, np.uint8)])
    Image.fromarray(rgba).save(tmp_path / "b.webp", lossless=True)
    im = read_image(tmp_path / "a.webp")
    assert im.format == "webp"
    np.testing.assert_array_equal(im.data, a)
    b = read_image(tmp_path / "b.webp")
    assert b.data.shape == (20, 30, 3) and "alpha channel dropped" in b.notes


def test_tiff_8_and_16_bit(tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    g16 = rng.integers(0, 65536, (20, 30), dtype=np.uint16)
    rgb16 = rng.integers(0, 65536, (20, 30, 3), dtype=np.uint16)
    tifffile.imwrite(tmp_path / "g16.tif", g16)
    tifffile.imwrite(tmp_path / "rgb16.tiff", rgb16, photometric="rgb")
    tifffile.imwrite(tmp_path / "rgb8.tif", _rgb(), photometric="rgb", compression="zlib")
    g = read_image(tmp_path / "g16.tif")
    assert g.format == "tiff" and g.data.dtype == np.uint16
    np.testing.assert_array_equal(g.data[:, :, 0], g16)
    np.testing.assert_array_equal(read_image(tmp_path / "rgb16.tiff").data, rgb16)
    np.testing.assert_array_equal(read_image(tmp_path / "rgb8.tif").data, _rgb())


def test_multipage_tiff_reads_first_page_with_a_note(tmp_path: Path) -> None:
    pages = [np.full((20, 30), 10 * (i + 1), np.uint8) for i in range(3)]
    with tifffile.TiffWriter(tmp_path / "stack.tif") as tw:
        for page in pages:
            tw.write(page, photometric="minisblack")
    assert len(tifffile.TiffFile(tmp_path / "stack.tif").pages) == 3
    im = read_image(tmp_path / "stack.tif")
    np.testing.assert_array_equal(im.data[:, :, 0], pages[0])
    assert "multi-page TIFF: page 1 of 3 used" in im.notes


def test_planar_and_gray_alpha_and_float_tiff(tmp_path: Path) -> None:
    planar = np.moveaxis(_rgb(), -1, 0)
    tifffile.imwrite(tmp_path / "planar.tif", planar, photometric="rgb", planarconfig="separate")
    np.testing.assert_array_equal(read_image(tmp_path / "planar.tif").data, _rgb())
    ga = np.random.default_rng(5).integers(0, 256, (20, 30, 2), dtype=np.uint8)
    tifffile.imwrite(tmp_path / "ga.tif", ga, photometric="minisblack", extrasamples=["unassalpha"])
    im = read_image(tmp_path / "ga.tif")
    np.testing.assert_array_equal(im.data[:, :, 0], ga[:, :, 0])
    assert "alpha channel dropped" in im.notes
    f = np.linspace(-1.0, 1.0, 600, dtype=np.float32).reshape(20, 30)
    tifffile.imwrite(tmp_path / "f.tif", f)
    fim = read_image(tmp_path / "f.tif")
    assert fim.data.dtype == np.uint16 and fim.data.min() == 0 and fim.data.max() == 65535
    assert any("float32 data scaled" in n for n in fim.notes)


def test_non_ascii_file_names(tmp_path: Path) -> None:
    folder = tmp_path / "données"
    folder.mkdir()
    for name in ("Überbild.png", "图像.jpg", "снимок.tif"):
        path = folder / name
        if name.endswith(".tif"):
            tifffile.imwrite(path, _rgb(), photometric="rgb")
        else:
            Image.fromarray(_rgb()).save(path)
        assert read_image(path).data.shape == (20, 30, 3)
        assert image_size(path) == (20, 30)
    assert [p.name for p in list_images(folder)] == sorted(["Überbild.png", "图像.jpg", "снимок.tif"])


def test_format_is_recognised_from_content_not_name(tmp_path: Path) -> None:
    Image.fromarray(_rgb()).save(tmp_path / "actually_png.jpg", format="PNG")
    assert read_image(tmp_path / "actually_png.jpg").format == "png"


# ------------------------------------------------------------------- bad files


def _error(path: Path) -> ImageReadError:
    with pytest.raises(ImageReadError) as info:
        read_image(path)
    assert info.value.path == path
    assert str(path) in str(info.value)
    return info.value


def test_zero_byte_file(tmp_path: Path) -> None:
    (tmp_path / "empty.png").write_bytes(b"")
    assert "empty" in _error(tmp_path / "empty.png").reason


def test_text_file_named_png(tmp_path: Path) -> None:
    (tmp_path / "notes.png").write_text("these are my notes, not a picture")
    reason = _error(tmp_path / "notes.png").reason
    assert "not a supported image" in reason and "these are my" in reason


@pytest.mark.parametrize("fraction", [0.1, 0.5, 0.9])
def test_truncated_png(tmp_path: Path, fraction: float) -> None:
    buf = io.BytesIO()
    Image.fromarray(_rgb(64, 64)).save(buf, "PNG")
    data = buf.getvalue()
    (tmp_path / "cut.png").write_bytes(data[: int(len(data) * fraction)])
    assert "truncated or corrupt" in _error(tmp_path / "cut.png").reason


def test_truncated_jpeg_and_tiff(tmp_path: Path) -> None:
    buf = io.BytesIO()
    Image.fromarray(_rgb(64, 64)).save(buf, "JPEG")
    (tmp_path / "cut.jpg").write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    assert "truncated" in _error(tmp_path / "cut.jpg").reason
    tifffile.imwrite(tmp_path / "full.tif", np.zeros((64, 64), np.uint16))
    data = (tmp_path / "full.tif").read_bytes()
    (tmp_path / "cut.tif").write_bytes(data[: len(data) // 2])
    assert "truncated or corrupt" in _error(tmp_path / "cut.tif").reason


def test_corrupt_png_header(tmp_path: Path) -> None:
    data = bytearray(_png_header_only(10, 10))
    data[20] ^= 0xFF  # inside IHDR: the CRC no longer matches
    (tmp_path / "bad.png").write_bytes(bytes(data))
    assert "corrupt" in _error(tmp_path / "bad.png").reason


def test_missing_folder_and_unsupported(tmp_path: Path) -> None:
    assert "does not exist" in _error(tmp_path / "nope.png").reason
    (tmp_path / "dir.png").mkdir()
    assert "folder" in _error(tmp_path / "dir.png").reason
    Image.fromarray(_rgb()).save(tmp_path / "anim.gif")
    assert "not a supported image" in _error(tmp_path / "anim.gif").reason


def test_huge_png_header_is_refused_without_allocating(tmp_path: Path) -> None:
    path = tmp_path / "huge.png"
    path.write_bytes(_png_header_only(20000, 20000))  # 1.2 GB as RGB, a few bytes on disk
    reason = _error(path).reason
    assert "20000×20000" in reason and "limit" in reason and "SEGSTUDIO_MAX_PIXELS" in reason
    assert image_size(path) == (20000, 20000)  # the header alone is fine to read
    # In a fresh process, peak memory must stay far below the 1.2 GB the pixels would need.
    code = (
        "import resource, sys\n"
        "from segstudio.core.image_io import read_image, ImageReadError\n"
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "try:\n    read_image(sys.argv[1])\nexcept ImageReadError:\n    pass\n"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before)\n"
    )
    res = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, cwd=REPO,
                         timeout=120)
    assert res.returncode == 0, res.stderr
    assert int(res.stdout.strip()) < 100 * 1024  # KiB


def test_pixel_limit_is_configurable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    Image.fromarray(_rgb(100, 100)).save(tmp_path / "a.png")
    monkeypatch.setenv("SEGSTUDIO_MAX_PIXELS", "5000")
    assert "limit" in _error(tmp_path / "a.png").reason
    assert read_image(tmp_path / "a.png", limit_pixels=20000).data.shape == (100, 100, 3)


# -------------------------------------------------------------- masks, listing


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_mask_round_trip(tmp_path: Path, dtype: type) -> None:
    m = np.random.default_rng(6).integers(0, 300 if dtype == np.uint16 else 12, (33, 47)).astype(dtype)
    m[0] = 255 if dtype == np.uint8 else 65535
    write_mask(tmp_path / "m.png", m)
    back = read_mask(tmp_path / "m.png")
    assert back.dtype == dtype
    np.testing.assert_array_equal(back, m)
    assert encode_mask_png(m)[:8] == b"\x89PNG\r\n\x1a\n"


def test_read_mask_gives_palette_indices_and_refuses_colour(tmp_path: Path) -> None:
    idx = np.random.default_rng(7).integers(0, 5, (10, 12)).astype(np.uint8)
    im = Image.frombytes("P", (12, 10), idx.tobytes())
    im.putpalette([200, 0, 0, 0, 200, 0, 0, 0, 200, 9, 9, 9, 50, 50, 50] + [0] * (768 - 15))
    im.save(tmp_path / "p.png")
    np.testing.assert_array_equal(read_mask(tmp_path / "p.png"), idx)
    Image.fromarray(_rgb()).save(tmp_path / "rgb.png")
    with pytest.raises(ImageReadError, match="one channel"):
        read_mask(tmp_path / "rgb.png")
    Image.fromarray(_rgb()).save(tmp_path / "x.jpg")
    with pytest.raises(ImageReadError, match="must be a PNG"):
        read_mask(tmp_path / "x.jpg")


def test_write_mask_refuses_bad_arrays(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        write_mask(tmp_path / "m.png", np.zeros((4, 4, 3), np.uint8))
    with pytest.raises(ValueError):
        write_mask(tmp_path / "m.png", np.zeros((4, 4), np.float32))
    assert not (tmp_path / "m.png").exists()


def test_list_images(tmp_path: Path) -> None:
    for name in ("b.PNG", "a.jpg", "c.txt", ".hidden.png", "sub/d.tif"):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_bytes(b"x")
    assert [p.name for p in list_images(tmp_path)] == ["a.jpg", "b.PNG"]
    assert [p.relative_to(tmp_path).as_posix() for p in list_images(tmp_path, recursive=True)] == [
        "a.jpg", "b.PNG", "sub/d.tif"]


def _png_with_exif_after_pixels(a: np.ndarray, orientation: int) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, "PNG")
    data = buf.getvalue()
    exif = Image.Exif()
    exif[0x0112] = orientation
    iend = data.rindex(b"IEND") - 4
    return data[:iend] + _png_chunk(b"eXIf", exif.tobytes()) + data[iend:]


def test_png_size_and_orientation_need_no_pixel_decoding(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from PIL import ImageFile

    path = tmp_path / "late_exif.png"
    path.write_bytes(_png_with_exif_after_pixels(_rgb(), 8))
    np.testing.assert_array_equal(read_image(path).data, np.rot90(_rgb(), 1))

    def no_decoding(self: object) -> None:
        raise AssertionError("pixels were decoded to read a header")

    monkeypatch.setattr(ImageFile.ImageFile, "load", no_decoding)
    assert image_size(path) == (30, 20)


def test_pillow_limit_is_lifted_while_any_reader_runs_and_restored_after() -> None:
    from segstudio.core.image_io import _without_pil_pixel_limit

    original = Image.MAX_IMAGE_PIXELS
    first, second = _without_pil_pixel_limit(), _without_pil_pixel_limit()
    first.__enter__()
    second.__enter__()  # a second thread starts reading before the first is done …
    first.__exit__(None, None, None)  # … the first finishing must not restore the limit under it
    assert Image.MAX_IMAGE_PIXELS is None
    second.__exit__(None, None, None)
    assert original == Image.MAX_IMAGE_PIXELS


def _encoded(fmt: str) -> bytes:
    buf = io.BytesIO()
    if fmt == "TIFF":
        tifffile.imwrite(buf, _rgb(24, 32), photometric="rgb", compression="zlib")
    elif fmt == "TIFF-raw":
        tifffile.imwrite(buf, _rgb(24, 32)[:, :, 0])
    else:
        Image.fromarray(_rgb(24, 32)).save(buf, fmt, **({"lossless": True} if fmt == "WEBP" else {}))
    return buf.getvalue()


FUZZED = ["PNG", "JPEG", "BMP", "WEBP", "TIFF", "TIFF-raw"]


@pytest.mark.parametrize("fmt", FUZZED)
def test_damaged_files_never_raise_anything_but_image_read_error(tmp_path: Path, fmt: str) -> None:
    # Random byte changes and cuts; a reader may succeed or refuse, but only with ImageReadError.
    rng = np.random.default_rng(FUZZED.index(fmt))
    data = _encoded(fmt)
    for i in range(80):
        damaged = bytearray(data)
        for _ in range(int(rng.integers(1, 8))):
            damaged[int(rng.integers(0, len(damaged)))] = int(rng.integers(0, 256))
        if i % 3 == 0:
            damaged = damaged[: int(rng.integers(1, len(damaged)))]
        path = tmp_path / f"{i}.img"
        path.write_bytes(bytes(damaged))
        for reader in (read_image, image_size, read_mask):
            try:
                reader(path)
            except ImageReadError as exc:
                assert exc.path == path and exc.reason
