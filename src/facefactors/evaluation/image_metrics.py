"""Image and embedding similarity: PSNR, SSIM and cosine similarity (pure torch).

Images are model tensors in [-1, 1] (the decoder's tanh range, DESIGN §5) of
shape (B, C, H, W). Both PSNR and SSIM map them linearly to [0, 1] first, so
the data range is 1 and the numbers are comparable to the usual 8-bit ones.

SSIM follows Wang et al. (2004) with the convention of
``skimage.metrics.structural_similarity(gaussian_weights=True, sigma=1.5,
use_sample_covariance=False, data_range=1, channel_axis=...)``: an 11×11
Gaussian window (σ = 1.5, truncated at 3.5σ), K1 = 0.01, K2 = 0.03, the SSIM
map averaged over the pixels at least 5 from the border (where the window fits
entirely), then over channels. Everything is differentiable.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from facefactors.errors import DataError

SSIM_SIGMA = 1.5
SSIM_TRUNCATE = 3.5  # scipy.ndimage.gaussian_filter's default, used by skimage
SSIM_K1 = 0.01
SSIM_K2 = 0.03


def to_unit_range(x: torch.Tensor, value_range: tuple[float, float] = (-1.0, 1.0)) -> torch.Tensor:
    """Map ``x`` linearly from ``value_range`` to [0, 1] (no clamping, so gradients stay exact)."""
    lo, hi = value_range
    if not hi > lo:
        raise DataError(f"Argument 'value_range' must be increasing, got {value_range}.")
    return (x - lo) / (hi - lo)


def _check_images(pred: torch.Tensor, target: torch.Tensor) -> None:
    if pred.dim() != 4 or pred.shape != target.shape:
        raise DataError(
            f"Images must be two (B, C, H, W) tensors of the same shape, got "
            f"{tuple(pred.shape)} and {tuple(target.shape)}."
        )


def psnr(
    pred: torch.Tensor,
    target: torch.Tensor,
    value_range: tuple[float, float] = (-1.0, 1.0),
    max_db: float | None = None,
) -> torch.Tensor:
    """Peak signal-to-noise ratio of each image pair, in dB, with data range 1 after mapping.

    Args:
        pred: images, shape (B, C, H, W), values in ``value_range``.
        target: reference images, shape (B, C, H, W).
        value_range: the range the inputs live in; mapped to [0, 1].
        max_db: if given, identical images (MSE 0, PSNR +inf) and any larger value
            are capped at this many dB so that means over a batch stay finite.

    Returns:
        PSNR per image, shape (B,).
    """
    _check_images(pred, target)
    diff = to_unit_range(pred, value_range) - to_unit_range(target, value_range)
    mse = diff.pow(2).flatten(1).mean(dim=1)
    out = -10.0 * torch.log10(mse)  # log10(0) = -inf gives +inf for identical images
    if max_db is not None:
        out = out.clamp(max=max_db)
    return out


def gaussian_window(
    sigma: float = SSIM_SIGMA,
    truncate: float = SSIM_TRUNCATE,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Normalised 1-D Gaussian taps, shape (2r+1,) with r = int(truncate·σ + 0.5) (11 for σ=1.5)."""
    radius = int(truncate * sigma + 0.5)
    x = torch.arange(-radius, radius + 1, dtype=dtype, device=device)
    w = torch.exp(-0.5 * (x / sigma) ** 2)
    return w / w.sum()


def _filter_valid(x: torch.Tensor, taps: torch.Tensor) -> torch.Tensor:
    """Separable Gaussian filter per channel, 'valid' region only: (B, C, H, W) -> (B, C, H-2r, W-2r)."""
    c = x.shape[1]
    k = taps.numel()
    row = taps.view(1, 1, 1, k).expand(c, 1, 1, k)
    col = taps.view(1, 1, k, 1).expand(c, 1, k, 1)
    return F.conv2d(F.conv2d(x, row, groups=c), col, groups=c)


def gaussian_blur(x: torch.Tensor, sigma: float, truncate: float = 3.0) -> torch.Tensor:
    """Separable Gaussian blur per channel, same size (edges replicated): (B, C, H, W).

    The reference for a decoder whose only error is blur (docs/ipd_findings.md §13).
    """
    taps = gaussian_window(sigma, truncate, x.dtype, x.device)
    r = (taps.numel() - 1) // 2
    return _filter_valid(F.pad(x, (r, r, r, r), mode="replicate"), taps)


def ssim(
    pred: torch.Tensor,
    target: torch.Tensor,
    value_range: tuple[float, float] = (-1.0, 1.0),
    sigma: float = SSIM_SIGMA,
) -> torch.Tensor:
    """Mean structural similarity of each image pair (skimage's Gaussian-weighted convention).

    Args:
        pred: images, shape (B, C, H, W), values in ``value_range``, H and W at least
            the window size (11 for σ = 1.5).
        target: reference images, shape (B, C, H, W).
        value_range: the range the inputs live in; mapped to [0, 1] (data range 1).
        sigma: standard deviation of the Gaussian window in pixels.

    Returns:
        SSIM per image (mean over valid pixels and channels), shape (B,); 1 for
        identical images.
    """
    _check_images(pred, target)
    taps = gaussian_window(sigma, dtype=pred.dtype, device=pred.device)
    if min(pred.shape[-2:]) < taps.numel():
        raise DataError(
            f"SSIM needs images of at least {taps.numel()}x{taps.numel()} pixels, "
            f"got {pred.shape[-2]}x{pred.shape[-1]}."
        )
    x = to_unit_range(pred, value_range)
    y = to_unit_range(target, value_range)
    c1 = SSIM_K1**2
    c2 = SSIM_K2**2
    # One batched filter call for the five local moments.
    moments = _filter_valid(torch.cat([x, y, x * x, y * y, x * y], dim=1), taps)
    mx, my, mxx, myy, mxy = moments.chunk(5, dim=1)
    vx = mxx - mx * mx
    vy = myy - my * my
    cxy = mxy - mx * my
    smap = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
    return smap.flatten(1).mean(dim=1)


def cosine_similarity(a: torch.Tensor, b: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Cosine of the angle between paired embeddings.

    Args:
        a: embeddings, shape (B, D).
        b: embeddings, shape (B, D).
        eps: floor on each norm, so a zero vector gives 0 instead of NaN.

    Returns:
        Cosine per pair, shape (B,), in [-1, 1].
    """
    if a.dim() != 2 or a.shape != b.shape:
        raise DataError(
            f"Embeddings must be two (B, D) tensors of the same shape, got "
            f"{tuple(a.shape)} and {tuple(b.shape)}."
        )
    na = a.norm(dim=1).clamp_min(eps)
    nb = b.norm(dim=1).clamp_min(eps)
    return (a * b).sum(dim=1) / (na * nb)


def neutral_fidelity(
    decoded: torch.Tensor,
    target: torch.Tensor,
    emb_decoded: torch.Tensor,
    emb_target: torch.Tensor,
    max_db: float = 100.0,
    identities: torch.Tensor | None = None,
) -> dict[str, float | int]:
    """Mean PSNR, SSIM and identity-embedding cosine between generated and true neutral faces.

    A cosine alone is hard to read (two different people can score 0.4 or 0.9
    depending on the network), so with ``identities`` the same cosine to the
    neutral faces of *other* people is reported as its reference, with the
    rank-1 rate at which a decoded face's nearest true neutral face (among all
    N) belongs to its own identity.

    Args:
        decoded: generated faces, e.g. decode(f_id + f_pose), shape (N, 3, H, W) in [-1, 1].
        target: the true neutral faces, shape (N, 3, H, W) in [-1, 1].
        emb_decoded: identity embeddings of ``decoded``, shape (N, D).
        emb_target: identity embeddings of ``target``, shape (N, D).
        max_db: PSNR cap, so one perfect image does not make the mean infinite.
        identities: optional identity of each sample, shape (N,).

    Returns:
        ``{"psnr": dB, "ssim": s, "id_cosine": c, "n": N}`` (the results.json
        ``neutral_fidelity`` entry), plus ``id_cosine_other`` and ``id_rank1``
        when ``identities`` is given and holds at least two identities.
    """
    if emb_decoded.shape[0] != decoded.shape[0]:
        raise DataError(
            f"Got {decoded.shape[0]} decoded images but {emb_decoded.shape[0]} embeddings."
        )
    with torch.no_grad():
        out: dict[str, float | int] = {
            "psnr": float(psnr(decoded, target, max_db=max_db).mean()),
            "ssim": float(ssim(decoded, target).mean()),
            "id_cosine": float(cosine_similarity(emb_decoded, emb_target).mean()),
            "n": int(decoded.shape[0]),
        }
        if identities is not None and len(torch.unique(identities)) > 1:
            a = torch.nn.functional.normalize(emb_decoded.float(), dim=1)
            b = torch.nn.functional.normalize(emb_target.float(), dim=1)
            sim = a @ b.T  # (N, N): decoded i against true neutral j
            same = identities[:, None] == identities[None, :]
            out["id_cosine_other"] = float(sim[~same].mean())
            nearest = sim.argmax(1)
            out["id_rank1"] = float((identities[nearest] == identities).float().mean())
        return out


def corner_chroma(x: torch.Tensor, k: int = 6) -> torch.Tensor:
    """Chroma of the background: the mean colour of the four k × k corners minus its grey.

    Args:
        x: images (B, 3, H, W) in [-1, 1] (mapped to [0, 1] first).
        k: corner side in pixels (the synthetic faces leave about 6 px of background
            in each corner at 64 px).

    Returns:
        (B, 3): the corners' mean RGB in [0, 1] minus its channel mean, so a grey
        background gives zeros and only the hue and saturation remain.
    """
    if x.dim() != 4 or x.shape[1] != 3 or min(x.shape[-2:]) < 2 * k:
        raise DataError(f"Need (B, 3, H, W) images with H, W >= {2 * k}, got {tuple(x.shape)}.")
    u = to_unit_range(x)
    c = torch.cat([u[..., :k, :k], u[..., :k, -k:], u[..., -k:, :k], u[..., -k:, -k:]], -1)
    c = c.mean((-2, -1))  # (B, 3)
    return c - c.mean(1, keepdim=True)


def expression_change_cosine(
    decoded_expr: torch.Tensor,
    decoded_neutral: torch.Tensor,
    image: torch.Tensor,
    true_neutral: torch.Tensor,
    eps: float = 1e-8,
) -> torch.Tensor:
    """How well the decodes' difference draws the expression: cos(x̂_{i-p-e} − x̂_{i-p}, x − x_n).

    IPD-FER's mechanism is that adding f_exp turns the neutral decode x̂_{i-p} into
    the expressive x̂_{i-p-e}. On synthetic faces the true change is known: the
    input x minus the true neutral face x_n of the same person, pose, light and
    background. The cosine of the two flattened differences is 1 when the decodes
    change where and how the face changes, about 0 when their difference is
    unrelated (or when f_exp changes nothing), and negative when it is reversed.

    Args:
        decoded_expr, decoded_neutral: x̂_{i-p-e} and x̂_{i-p}, (B, 3, H, W) in [-1, 1].
        image, true_neutral: x and x_n, (B, 3, H, W) in [-1, 1].
        eps: guards zero differences (their cosine is 0).

    Returns:
        (B,) cosines (0 for a neutral input, whose true change is zero).
    """
    for t in (decoded_neutral, image, true_neutral):
        _check_images(decoded_expr, t)
    a = (decoded_expr - decoded_neutral).flatten(1).float()
    b = (image - true_neutral).flatten(1).float()
    return (a * b).sum(1) / (a.norm(dim=1) * b.norm(dim=1)).clamp_min(eps)


def expression_gain(
    decoded_expr: torch.Tensor,
    decoded_neutral: torch.Tensor,
    image: torch.Tensor,
    true_neutral: torch.Tensor,
) -> torch.Tensor:
    """The share of the true expression change the decodes draw, per image.

    gain = ⟨x̂_{i-p-e} − x̂_{i-p}, x − x_n⟩ / ‖x − x_n‖²: the least-squares coefficient of
    the true change in the decodes' difference. 1 when the decodes differ by the whole
    expression, 0 when their difference is orthogonal to it (or zero), negative when
    reversed. Unlike the cosine it also falls when the change is drawn too faintly.

    Args:
        decoded_expr, decoded_neutral, image, true_neutral: (B, 3, H, W) in [-1, 1].

    Returns:
        (B,) gains (0 where the true change is zero).
    """
    for other in (decoded_neutral, image, true_neutral):
        _check_images(decoded_expr, other)
    a = (decoded_expr - decoded_neutral).flatten(1).float()
    b = (image - true_neutral).flatten(1).float()
    return (a * b).sum(1) / b.pow(2).sum(1).clamp_min(1e-12)


def rms_difference(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per-image root-mean-square of a − b in [0, 1] units (half the [-1, 1] difference).

    The size of a change: x − x_n is the whole expression change of a face, and
    x̂_{i-p-e} − x̂_{i-p} what adding f_exp changes in the decode.

    Args:
        a, b: images (B, 3, H, W) in [-1, 1].

    Returns:
        (B,) RMS differences; 1/255 is one grey level.
    """
    _check_images(a, b)
    return ((a.float() - b.float()) / 2).pow(2).flatten(1).mean(1).sqrt()


def off_change_share(
    change: torch.Tensor, true_change: torch.Tensor, threshold: float = 2 / 255
) -> torch.Tensor:
    """Share of a change's energy in the pixels where the true change is (almost) zero.

    With change = x̂_{i-p-e} − x̂_{i-p} and true_change = x − x_n, it says how much of
    what f_exp adds to the decode lies outside the pixels the expression moves: 0 when
    the decodes differ only where the face changes, near 1 when f_exp redraws the
    background, the light or the skin instead.

    Args:
        change, true_change: (B, 3, H, W) differences of [-1, 1] images.
        threshold: a pixel is unchanged when its largest channel change is at most
            this, in [0, 1] units (default two grey levels).

    Returns:
        (B,) shares in [0, 1] (0 where ``change`` is zero).
    """
    _check_images(change, true_change)
    still = (true_change.abs().amax(1, keepdim=True) / 2 <= threshold).expand_as(change)
    energy = change.float().pow(2)
    total = energy.flatten(1).sum(1)
    return (energy * still).flatten(1).sum(1) / total.clamp_min(1e-12)


def side_fidelity(decoded: torch.Tensor, target: torch.Tensor) -> dict[str, float | int]:
    """Does a decode turn the way its target does? PSNR against the target and its mirror.

    A turned face and its left–right mirror image have the same |yaw|, light
    strength and background colours but face opposite ways. A decoder that draws
    the pose scores higher against the target than against the mirror; one blind to
    the side (a symmetric, frontal-looking face) scores the same against both, and
    wins half the faces by chance.

    Args:
        decoded: decodes, (B, 3, H, W) in [-1, 1], e.g. x̂_{i-p} of turned faces.
        target: their true images (the true neutral faces), (B, 3, H, W) in [-1, 1].

    Returns:
        ``{"psnr": dB, "psnr_mirrored": dB, "correct_side": fraction, "n": B}``:
        mean PSNR against the target and against its mirror, and the share of
        decodes closer to the target than to its mirror.
    """
    _check_images(decoded, target)
    if decoded.shape[0] == 0:
        raise DataError("side_fidelity needs at least one image.")
    with torch.no_grad():
        same = psnr(decoded, target, max_db=100.0)
        mirrored = psnr(decoded, target.flip(-1), max_db=100.0)
    return {
        "psnr": float(same.mean()),
        "psnr_mirrored": float(mirrored.mean()),
        "correct_side": float((same > mirrored).float().mean()),
        "n": int(decoded.shape[0]),
    }
