"""PSNR, SSIM and cosine similarity: hand-computed values, skimage agreement, gradients."""

from __future__ import annotations

import math

import pytest
import torch

from facefactors.errors import DataError
from facefactors.evaluation.image_metrics import (
    corner_chroma,
    cosine_similarity,
    expression_change_cosine,
    gaussian_window,
    neutral_fidelity,
    off_change_share,
    psnr,
    rms_difference,
    side_fidelity,
    ssim,
)


def _rand_pair(seed: int, shape=(2, 3, 24, 28)):
    g = torch.Generator().manual_seed(seed)
    a = torch.rand(shape, generator=g, dtype=torch.float64) * 2 - 1
    b = (a + 0.4 * torch.randn(shape, generator=g, dtype=torch.float64)).clamp(-1, 1)
    return a, b


def test_identical_images():
    a, _ = _rand_pair(0)
    assert torch.allclose(ssim(a, a), torch.ones(2, dtype=torch.float64), atol=1e-12)
    assert torch.isinf(psnr(a, a)).all()
    assert torch.equal(psnr(a, a, max_db=100.0), torch.full((2,), 100.0, dtype=torch.float64))


def test_psnr_of_constant_offset():
    target = torch.zeros(1, 3, 16, 16)
    # +0.2 in [-1, 1] is +0.1 in [0, 1]: MSE 0.01 -> 10 * log10(1 / 0.01) = 20 dB.
    assert psnr(target + 0.2, target).item() == pytest.approx(20.0, abs=1e-4)
    # +1.0 in [-1, 1] is +0.5 in [0, 1]: MSE 0.25 -> 10 * log10(4) dB.
    assert psnr(target + 1.0, target).item() == pytest.approx(10 * math.log10(4), abs=1e-4)


def test_ssim_of_constant_images_hand_computed():
    # Flat images have zero variance, so SSIM = (2ab + C1) / (a^2 + b^2 + C1).
    x = torch.zeros(1, 1, 12, 12, dtype=torch.float64)  # 0.5 in [0, 1]
    y = torch.full_like(x, -0.5)  # 0.25 in [0, 1]
    expected = (2 * 0.5 * 0.25 + 1e-4) / (0.25 + 0.0625 + 1e-4)
    assert ssim(x, y).item() == pytest.approx(expected, abs=1e-12)


def test_gaussian_window_matches_skimage_size():
    w = gaussian_window(1.5, dtype=torch.float64)
    assert w.numel() == 11  # 2 * int(3.5 * 1.5 + 0.5) + 1
    assert w.sum().item() == pytest.approx(1.0)
    assert w[5] == w.max() and torch.allclose(w, w.flip(0))


def test_matches_skimage_on_random_images():
    metrics = pytest.importorskip("skimage.metrics")
    a, b = _rand_pair(1)
    ours_ssim, ours_psnr = ssim(b, a), psnr(b, a)
    for i in range(a.shape[0]):
        x = ((a[i] + 1) / 2).permute(1, 2, 0).numpy()
        y = ((b[i] + 1) / 2).permute(1, 2, 0).numpy()
        ref = metrics.structural_similarity(
            x,
            y,
            gaussian_weights=True,
            sigma=1.5,
            use_sample_covariance=False,
            data_range=1.0,
            channel_axis=2,
        )
        assert ours_ssim[i].item() == pytest.approx(ref, abs=1e-6)
        ref_psnr = metrics.peak_signal_noise_ratio(x, y, data_range=1.0)
        assert ours_psnr[i].item() == pytest.approx(ref_psnr, abs=1e-6)


@pytest.fixture
def one_thread():
    # gradcheck runs hundreds of tiny convolutions; thread hand-off dominates them on
    # shared cores (measured 10x slower with 2 threads), so run it single-threaded.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_ssim_gradcheck(one_thread):
    g = torch.Generator().manual_seed(2)
    x = (torch.rand(1, 1, 11, 11, generator=g, dtype=torch.float64) * 1.6 - 0.8).requires_grad_()
    y = (torch.rand(1, 1, 11, 11, generator=g, dtype=torch.float64) * 1.6 - 0.8).requires_grad_()
    assert torch.autograd.gradcheck(ssim, (x, y), eps=1e-6, atol=1e-5)


def test_ssim_rejects_small_or_mismatched_images():
    with pytest.raises(DataError, match="11x11"):
        ssim(torch.zeros(1, 3, 8, 8), torch.zeros(1, 3, 8, 8))
    with pytest.raises(DataError, match="same shape"):
        psnr(torch.zeros(1, 3, 16, 16), torch.zeros(1, 3, 16, 15))


def test_cosine_similarity():
    a = torch.tensor([[1.0, 0.0], [1.0, 2.0], [3.0, 4.0], [0.0, 0.0]])
    b = torch.tensor([[0.0, 5.0], [2.0, 4.0], [-3.0, -4.0], [1.0, 1.0]])
    torch.testing.assert_close(cosine_similarity(a, b), torch.tensor([0.0, 1.0, -1.0, 0.0]))
    with pytest.raises(DataError, match=r"\(B, D\)"):
        cosine_similarity(a, b[:2])


def test_neutral_fidelity_summary():
    a, b = _rand_pair(3, shape=(3, 3, 16, 16))
    emb = torch.randn(3, 8)
    same = neutral_fidelity(a, a, emb, emb, max_db=100.0)
    assert same == {
        "psnr": 100.0,
        "ssim": pytest.approx(1.0),
        "id_cosine": pytest.approx(1.0),
        "n": 3,
    }
    diff = neutral_fidelity(b, a, emb, -emb)
    assert diff["psnr"] == pytest.approx(psnr(b, a).mean().item())
    assert diff["ssim"] < 1.0 and diff["id_cosine"] == pytest.approx(-1.0)


def test_neutral_fidelity_reference_cosine_and_rank1_by_hand():
    imgs = torch.zeros(3, 3, 16, 16)
    # Samples 0 and 1 are person 7, sample 2 is person 9.
    ids = torch.tensor([7, 7, 9])
    true = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    # Decoded: 0 matches its person, 1 points at person 9's face, 2 leans to its own.
    fake = torch.tensor([[2.0, 0.0], [0.0, 3.0], [1.0, 2.0]])
    out = neutral_fidelity(imgs, imgs, fake, true, identities=ids)
    u, v = 5**-0.5, 2 * 5**-0.5  # cos(f2, t0) = cos(f2, t1) = 1/sqrt5, cos(f2, t2) = 2/sqrt5
    # Other-person pairs: cos(f0,t2)=0, cos(f1,t2)=1, cos(f2,t0)=u, cos(f2,t1)=u.
    assert out["id_cosine_other"] == pytest.approx((0 + 1 + u + u) / 4)
    # Nearest true face: f0 -> t0 (person 7, right), f1 -> t2 (wrong), f2 -> t2 (right).
    assert out["id_rank1"] == pytest.approx(2 / 3)
    assert out["id_cosine"] == pytest.approx((1 + 0 + v) / 3)  # the paired cosine is unchanged
    # One identity only: no reference can be formed, and none is reported.
    alone = neutral_fidelity(imgs, imgs, fake, true, identities=torch.tensor([1, 1, 1]))
    assert "id_cosine_other" not in alone and "id_rank1" not in alone


def test_corner_chroma_by_hand():
    x = torch.full((1, 3, 16, 16), 0.0)  # grey 0.5 everywhere after mapping
    x[:, :, 4:12, 4:12] = 1.0  # a white centre the corners must not see
    x[0, 0, :4, :4] = 1.0  # top-left corner red channel 1.0 (unit range)
    c = corner_chroma(x, k=4)
    # Corner mean RGB (unit range) = (0.5 + 0.5/4, 0.5, 0.5); grey = 0.5 + 0.5/12.
    r = 0.5 + 0.125
    g = 0.5 + 0.125 / 3
    torch.testing.assert_close(c, torch.tensor([[r - g, 0.5 - g, 0.5 - g]]))
    with pytest.raises(DataError):
        corner_chroma(torch.zeros(1, 3, 6, 6), k=4)


def test_expression_change_cosine_sign_and_scale():
    g = torch.Generator().manual_seed(0)
    neutral = torch.rand(2, 3, 8, 8, generator=g) * 2 - 1
    delta = torch.rand(2, 3, 8, 8, generator=g) * 0.2
    image = neutral + delta
    base = torch.rand(2, 3, 8, 8, generator=g) * 2 - 1  # another neutral decode
    # A decoder that adds half the true change (at any offset) scores 1; reversed, -1.
    same = expression_change_cosine(base + 0.5 * delta, base, image, neutral)
    torch.testing.assert_close(same, torch.ones(2))
    flipped = expression_change_cosine(base, base + 0.5 * delta, image, neutral)
    torch.testing.assert_close(flipped, -torch.ones(2))
    # No change between the decodes: 0, not NaN.
    torch.testing.assert_close(expression_change_cosine(base, base, image, neutral), torch.zeros(2))


def test_rms_difference_is_in_unit_range_units():
    # Image 0 differs by 0.4 in [-1, 1] (0.2 in [0, 1]) on a quarter of its pixels:
    # RMS sqrt(0.25 * 0.2²) = 0.1. Image 1 is unchanged. A bug that forgets the halving
    # gives 0.2; one that averages |a − b| instead of squaring gives 0.05.
    b = torch.zeros(2, 3, 4, 4)
    a = b.clone()
    a[0, :, :2, :2] = 0.4
    torch.testing.assert_close(rms_difference(a, b), torch.tensor([0.1, 0.0]))
    torch.testing.assert_close(rms_difference(b, a), torch.tensor([0.1, 0.0]))  # symmetric
    with pytest.raises(DataError):
        rms_difference(a, b[:, :, :2])


def test_off_change_share_splits_the_energy_by_the_true_change():
    # The true change moves the top-left 2×2 pixels only (0.2 in [-1, 1], 0.1 in [0, 1]).
    true_change = torch.zeros(1, 3, 4, 4)
    true_change[0, 1, :2, :2] = 0.2  # one channel is enough to count as changed
    change = torch.zeros(1, 3, 4, 4)
    change[0, :, :2, :2] = 0.1  # energy 12 · 0.01 = 0.12 where the face changes
    change[0, :, 3, 3] = 0.2  # energy 3 · 0.04 = 0.12 where it does not
    torch.testing.assert_close(off_change_share(change, true_change), torch.tensor([0.5]))
    # Swapping the arguments asks another question: the true change lies all in the
    # pixels where the drawn one is nonzero.
    torch.testing.assert_close(off_change_share(true_change, change), torch.tensor([0.0]))
    # A change of 1/255 in [0, 1] is under the two-grey-level threshold: still unchanged.
    faint = torch.full((1, 3, 4, 4), 2 / 255)
    torch.testing.assert_close(off_change_share(change, faint), torch.tensor([1.0]))
    torch.testing.assert_close(off_change_share(torch.zeros(1, 3, 4, 4), faint), torch.zeros(1))


def test_side_fidelity_tells_the_turned_face_from_its_mirror():
    # A face turned to one side: a bright left half, a dark right half, top-bottom asymmetric too.
    target = torch.full((2, 3, 8, 8), -0.5)
    target[..., :4] = 0.5
    target[..., :2, :] += 0.25  # a vertical flip would give a different mirror
    exact = side_fidelity(target.clone(), target)
    # vs the true face: capped at 100 dB; vs the mirror every pixel is off by 1 in [-1, 1],
    # 0.5 in [0, 1], so MSE = 0.25 and PSNR = 10 log10(4) = 6.02 dB (a vertical flip: 26 dB).
    assert exact["psnr"] == pytest.approx(100.0)
    assert exact["psnr_mirrored"] == pytest.approx(10 * math.log10(4), abs=1e-4)
    assert exact["correct_side"] == 1.0 and exact["n"] == 2
    # The decode of the mirrored face loses every time (arguments or the flip swapped).
    wrong = side_fidelity(target.flip(-1), target)
    assert wrong["correct_side"] == 0.0 and wrong["psnr"] < wrong["psnr_mirrored"]
    # A symmetric decode ties: blind to the side.
    blind = side_fidelity((target + target.flip(-1)) / 2, target)
    assert blind["psnr"] == pytest.approx(blind["psnr_mirrored"])
    assert blind["correct_side"] == 0.0  # ties count as not closer
    with pytest.raises(DataError, match="at least one image"):
        side_fidelity(target[:0], target[:0])


def test_gaussian_blur_by_hand():
    from facefactors.evaluation.image_metrics import gaussian_blur, gaussian_window

    flat = torch.full((1, 3, 9, 9), 0.3)
    torch.testing.assert_close(gaussian_blur(flat, 1.0), flat)  # replicated edges: no dark rim
    impulse = torch.zeros(1, 1, 15, 15)
    impulse[0, 0, 7, 7] = 1.0
    out = gaussian_blur(impulse, 1.0)
    taps = gaussian_window(1.0, 3.0)  # radius 3
    expect = torch.zeros(15, 15)
    expect[4:11, 4:11] = taps[:, None] * taps[None, :]
    torch.testing.assert_close(out[0, 0], expect)
    # rows and columns are both filtered (a one-axis filter would leave row 7 a line)
    assert out[0, 0, 4, 7] > 0 and out[0, 0, 7, 4] > 0 and out[0, 0, 0, 7] == 0
