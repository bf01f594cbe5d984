"""Peak memory stays under 1 GB for every hostile header: checked in a subprocess under resource limits.

:mod:`tests.memory_probe` runs each case with the address space limited to
what the process has plus 1 GiB and reports the case's peak resident size
(``VmHWM``, reset before each case). Before these bounds a 700-byte JPEG
claiming 15000×15000 pixels took 2.2 GB, a lossless WebP 3.9 GB, an RLE size of
60000² 6.9 GB and a model card asking for ``base_width=6000`` 20.7 GB.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PEAK_LIMIT_MB = 1024

EXPECTED = {
    "png-claiming-100000x100000": ("ImageReadError", "more than the limit"),
    "png-claiming-15000x15000": ("ImageReadError", "truncated or corrupt"),
    "jpeg-claiming-15000x15000": ("ImageReadError", "too small for the 15000×15000 pixels"),
    "webp-claiming-15000x15000": ("ImageReadError", "lie.webp"),  # by the bound, or by libwebp at once
    "tiff-claiming-50000x50000": ("ImageReadError", "more than the limit"),
    "tiff-claiming-15000x15000": ("ImageReadError", "truncated or corrupt"),
    "mask-claiming-60000x60000-for-512x512": ("ImageReadError", "60000×60000 but its image is 512×512"),
    "mask-claiming-60000x60000": ("ImageReadError", "more than the limit"),
    "rle-size-60000x60000-for-512x512": ("RleError", "the RLE is 60000×60000, the image 512×512"),
    "rle-size-60000x60000": ("RleError", "more than the limit"),
    "rle-counts-overflowing-int64": ("RleError", "add up to"),
    "coco-rle-60000x60000": ("ValueError", "the RLE is 60000×60000"),
    "coco-json-nested-1000000-deep": ("FormatError", "nested 1000000 levels deep"),
    "project-file-nested-1000000-deep": ("ProjectFileError", "nested 1000000 levels deep"),
    "model-card-base_width-6000": ("ModelFileError", "do not fit"),
    "model-card-base_width-200000": ("ModelFileError", "do not fit"),
    "model-card-100000-classes": ("ModelFileError", "class"),
    "model-tensor-shape-1e12": ("ModelFileError", "needs 8000000000000 bytes"),
    "model-header-length-1TB": ("ModelFileError", "not a model file"),
    "onnx-custom-op": ("ModelFileError", "ONNX Runtime cannot run it"),
    "labelme-circle-radius-1e300": (None, ""),
}

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not sys.platform.startswith("linux"), reason="peaks are read from /proc (Linux)")]


@pytest.fixture(scope="module")
def probed() -> dict[str, dict]:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    res = subprocess.run([sys.executable, "-m", "tests.memory_probe", *EXPECTED], capture_output=True, text=True,
                         cwd=REPO, env=env, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    results = [json.loads(line) for line in res.stdout.splitlines() if line.startswith("{")]
    return {r["case"]: r for r in results}


@pytest.mark.parametrize("name", list(EXPECTED))
def test_a_hostile_header_is_refused_under_1_gb(probed: dict[str, dict], name: str) -> None:
    result = probed[name]
    error, text = EXPECTED[name]
    assert result["error"] == error, result["message"]
    assert text in result["message"]
    assert result["peak_mb"] < PEAK_LIMIT_MB, f"{name}: peak {result['peak_mb']:.0f} MB"
    assert result["peak_reset"], "the peak could not be reset per case; it is the process's peak so far"
