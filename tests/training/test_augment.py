from __future__ import annotations

import numpy as np
import pytest
import torch

from segstudio.training.augment import (
    AugmentConfig,
    SampleParams,
    draw_params,
    photometric_jitter,
    warp_batch_torch,
    warp_sample,
)

CROP = (40, 56)


def _coded(h: int = 30, w: int = 44) -> tuple[np.ndarray, np.ndarray]:
    """An image whose gray value encodes its label (label = value // 50), in blocks with sharp edges."""
    rng = np.random.default_rng(3)
    label = np.kron(rng.integers(0, 5, (h // 2, w // 2)), np.ones((2, 2), np.int64)).astype(np.uint8)
    return (label * 50 + 10).astype(np.uint8)[:, :, None], label


def _identity() -> SampleParams:
    return SampleParams(np.array([[1.0, 0, 0], [0, 1.0, 0]]), 0.0, 1.0, 1.0)


def test_identity_params_copy_the_top_left_crop_and_pad_with_ignore() -> None:
    image, label = _coded()
    img, lab = warp_sample(image, label, _identity(), CROP, 255)
    assert img.shape == (*CROP, 1) and lab.shape == CROP
    np.testing.assert_array_equal(img[:30, :44, 0], image[:, :, 0])
    np.testing.assert_array_equal(lab[:30, :44], label)
    assert (lab[30:] == 255).all() and (lab[:, 44:] == 255).all()  # padding is "not labelled"
    assert (img[30:] == 0).all()


@pytest.mark.parametrize("seed", range(6))
def test_padding_is_ignore_labelled_when_the_image_shrinks(seed: int) -> None:
    image, label = _coded()
    cfg = AugmentConfig(scale_range=(0.5, 0.6))
    params = draw_params(np.random.default_rng(seed), label.shape, CROP, cfg)
    _, lab = warp_sample(image, label, params, CROP, 255)
    ignored = (lab == 255).mean()
    # the scaled image covers at most 0.6² of its own area, far less than the crop
    assert ignored > 1 - (0.6 * 30 * 0.6 * 44) / (CROP[0] * CROP[1]) - 0.02
    assert (lab != 255).any()


@pytest.mark.parametrize("seed", range(8))
def test_geometry_moves_labels_with_images(seed: int) -> None:
    """Scale, rotation, quarter turns and both flips: every labelled pixel still matches its image value."""
    import cv2

    rng = np.random.default_rng(seed)
    label = np.kron(rng.integers(0, 5, (6, 8)), np.ones((8, 8), np.int64)).astype(np.uint8)
    image = (label * 50 + 10).astype(np.uint8)[:, :, None]
    cfg = AugmentConfig(scale_range=(0.9, 1.6), hflip=True, vflip=True, rot90=True, rotate_deg=15)
    params = draw_params(rng, label.shape, CROP, cfg)
    img, lab = warp_sample(image, label, params, CROP, 255)
    # away from block edges (uniform 5×5 neighbourhood in the warped label) bilinear and nearest agree
    kernel = np.ones((5, 5), np.uint8)
    uniform = (cv2.dilate(lab, kernel) == cv2.erode(lab, kernel)) & (lab != 255)
    uniform[:2] = uniform[-2:] = uniform[:, :2] = uniform[:, -2:] = False  # blocks may end just outside the crop
    assert uniform.sum() > 50
    np.testing.assert_array_equal(img[:, :, 0][uniform], (lab[uniform] * 50 + 10).astype(np.uint8))


def test_horizontal_flip_flips_both() -> None:
    image, label = _coded()
    h, w = label.shape
    flip = SampleParams(np.array([[-1.0, 0, w - 1], [0, 1.0, 0]]), 0.0, 1.0, 1.0)
    img, lab = warp_sample(image, label, flip, (h, w), 255)
    np.testing.assert_array_equal(lab, label[:, ::-1])
    np.testing.assert_array_equal(img[:, :, 0], image[::, ::-1, 0])


def test_draw_params_flips_half_the_time() -> None:
    cfg = AugmentConfig(scale_range=(1.0, 1.0), hflip=True)
    signs = [np.sign(draw_params(np.random.default_rng(i), (32, 32), (32, 32), cfg).matrix[0, 0])
             for i in range(200)]
    assert 60 < sum(s < 0 for s in signs) < 140


@pytest.mark.parametrize("seed", range(4))
def test_torch_path_matches_opencv(seed: int) -> None:
    """The GPU executor (run here on CPU tensors) gives the OpenCV result: same geometry, same padding."""
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 255, (30, 44, 3), dtype=np.uint8)
    _, label = _coded()
    cfg = AugmentConfig(scale_range=(0.6, 1.8), hflip=True, rotate_deg=20)
    params = draw_params(rng, label.shape, CROP, cfg)
    img_cv, lab_cv = warp_sample(image, label, params, CROP, 255)
    t_img = torch.from_numpy(image).permute(2, 0, 1)
    t_lab = torch.from_numpy(label)
    img_t, lab_t = warp_batch_torch([t_img], [t_lab], [params], CROP, 255)
    diff = np.abs(img_t[0].permute(1, 2, 0).numpy() - img_cv.astype(np.float32))
    assert np.median(diff) < 1.0 and diff.mean() < 4.0
    assert (lab_t[0].numpy() == lab_cv).mean() > 0.97


def test_torch_batch_of_mixed_sizes() -> None:
    a = torch.zeros(1, 20, 30, dtype=torch.uint8)
    b = torch.full((1, 10, 12), 200, dtype=torch.uint8)
    la = torch.zeros(20, 30, dtype=torch.uint8)
    lb = torch.ones(10, 12, dtype=torch.uint8)
    x, y = warp_batch_torch([a, b], [la, lb], [_identity(), _identity()], (16, 16), 255)
    assert x.shape == (2, 1, 16, 16) and y.dtype == torch.int64
    assert (y[0] == 0).all()
    assert (y[1, :10, :12] == 1).all() and (y[1, 10:] == 255).all() and (y[1, :, 12:] == 255).all()
    assert float(x[1, 0, 0, 0]) == pytest.approx(200)


def test_photometric_jitter_per_sample() -> None:
    x = torch.full((2, 3, 4, 4), 0.5)
    x[:, 0] = 0.2
    p_same = SampleParams(np.eye(2, 3), 0.0, 1.0, 1.0)
    p_bright = SampleParams(np.eye(2, 3), 0.1, 1.0, 0.0)  # brighter, fully desaturated
    out = photometric_jitter(x, [p_same, p_bright], 1.0)
    assert torch.allclose(out[0], x[0])
    assert torch.allclose(out[1, 0], out[1, 1]) and torch.allclose(out[1, 1], out[1, 2])  # gray
    assert float(out[1].mean()) > float(x[1].mean())
    assert float(out.max()) <= 1.0


def test_bad_config() -> None:
    with pytest.raises(ValueError):
        AugmentConfig(scale_range=(2.0, 1.0))
    with pytest.raises(ValueError):
        AugmentConfig(contrast=-1)


def test_elastic_deformation_moves_labels_with_images_on_both_paths() -> None:
    import cv2

    rng = np.random.default_rng(5)
    label = np.kron(rng.integers(0, 5, (6, 8)), np.ones((8, 8), np.int64)).astype(np.uint8)
    image = (label * 50 + 10).astype(np.uint8)[:, :, None]
    cfg = AugmentConfig(scale_range=(1.0, 1.2), hflip=True, rot90=True, elastic_px=4.0)
    params = draw_params(rng, label.shape, CROP, cfg)
    assert params.displacement is not None and params.displacement.shape == (2, 3, 3)
    img, lab = warp_sample(image, label, params, CROP, 255)
    kernel = np.ones((5, 5), np.uint8)
    uniform = (cv2.dilate(lab, kernel) == cv2.erode(lab, kernel)) & (lab != 255)
    uniform[:2] = uniform[-2:] = uniform[:, :2] = uniform[:, -2:] = False
    assert uniform.sum() > 50
    np.testing.assert_array_equal(img[:, :, 0][uniform], (lab[uniform] * 50 + 10).astype(np.uint8))
    # the deformation really bends things: not the plain affine result
    flat = SampleParams(params.matrix, 0.0, 1.0, 1.0)
    _, lab_flat = warp_sample(image, label, flat, CROP, 255)
    assert (lab_flat != lab).mean() > 0.02
    # the device path gives the same
    img_t, lab_t = warp_batch_torch([torch.from_numpy(image).permute(2, 0, 1)], [torch.from_numpy(label)],
                                    [params], CROP, 255)
    assert (lab_t[0].numpy() == lab).mean() > 0.97
    assert np.median(np.abs(img_t[0, 0].numpy() - img[:, :, 0])) < 1.0


def test_elastic_draw_leaves_other_draws_alone() -> None:
    a = draw_params(np.random.default_rng(1), (32, 32), (16, 16), AugmentConfig())
    b = draw_params(np.random.default_rng(1), (32, 32), (16, 16), AugmentConfig(elastic_px=5.0))
    np.testing.assert_array_equal(a.matrix, b.matrix)
    assert a.brightness == b.brightness and a.displacement is None and b.displacement is not None
