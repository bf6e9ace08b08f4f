"""The decoder refit on frozen features (facefactors.experiments.decoder_refit)."""

from __future__ import annotations

import pytest
import torch

from facefactors.evaluation.image_metrics import expression_gain
from facefactors.experiments.decoder_refit import (
    NEUTRAL_ID,
    frozen_features,
    make_decoder,
    measure,
    refit,
    refit_grid,
)
from facefactors.ipd.config import ModelConfig
from facefactors.ipd.decoder import Decoder
from facefactors.ipd.model import IPDModel
from ipd_helpers import one_thread  # noqa: F401 - autouse fixture


def _faces(n: int = 4, size: int = 16) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return (torch.rand(n, 3, size, size, generator=g) * 2 - 1,
            torch.rand(n, 3, size, size, generator=g) * 2 - 1)  # fmt: skip


def test_expression_gain_by_hand() -> None:
    x, xn = _faces()
    ip = torch.zeros_like(x)
    change = x - xn
    # Half the true change drawn: gain 0.5 (a cosine would say 1; swapped arguments 2).
    assert torch.allclose(expression_gain(ip + 0.5 * change, ip, x, xn), torch.full((4,), 0.5))
    assert torch.allclose(expression_gain(ip - change, ip, x, xn), torch.full((4,), -1.0))
    # A difference orthogonal to the change draws none of it.
    flat = change.flatten(1)
    other = torch.randn_like(flat)
    other -= (other * flat).sum(1, keepdim=True) / flat.pow(2).sum(1, keepdim=True) * flat
    gain = expression_gain(ip + other.view_as(x), ip, x, xn)
    assert torch.allclose(gain, torch.zeros(4), atol=1e-5)
    # A neutral input (no true change) gives 0, not a division by zero.
    assert torch.equal(expression_gain(ip + 1, ip, x, x), torch.zeros(4))


def _tiny_model() -> IPDModel:
    torch.manual_seed(0)
    cfg = ModelConfig(variant="ipd", width=4, decoder_channels=4, decoder_norm="batch",
                      decoder_start_norm="none", decoder_colour_grid=4)  # fmt: skip
    return IPDModel(cfg, 32).eval()


def test_frozen_features_are_the_models_sums() -> None:
    model = _tiny_model()
    x = torch.rand(5, 3, 32, 32) * 2 - 1
    feats = frozen_features(model, x, batch=2)  # batches of 2 must not change the result
    f = model.encode(x)
    assert feats.shape == (5, 2, model.feature_dim)
    assert torch.allclose(feats[:, 0], f.f_id + f.f_pose, atol=1e-5)
    assert torch.allclose(feats[:, 1], f.f_exp, atol=1e-5)


def test_make_decoder_copies_or_builds_with_the_runs_settings() -> None:
    model = _tiny_model()
    warm = make_decoder(model, "warm", 32)
    with torch.no_grad():
        warm.to_rgb.bias.add_(1.0)  # a copy: the run's decoder must not change
    assert not torch.equal(warm.to_rgb.bias, model.dec.to_rgb.bias)
    fresh = make_decoder(model, "fresh:8", 32)
    assert fresh.stages[-1][0].out_channels == 8
    assert isinstance(fresh.stages[1][1], torch.nn.BatchNorm2d)
    assert isinstance(fresh.stages[0][1], torch.nn.Identity)  # no first-stage norm
    assert fresh.colour_grid == 4
    for bad in ("cold", "fresh:", "fresh:x"):
        with pytest.raises(ValueError, match="warm"):
            make_decoder(model, bad, 32)


def _toy(n: int = 64, size: int = 16, d: int = 8) -> tuple[torch.Tensor, dict]:
    """Features whose f_exp says whether a bright square is drawn on a neutral face
    (the true neutral faces' features are ``neutral_features(feats)``)."""
    g = torch.Generator().manual_seed(1)
    colour = torch.rand(n, 3, 1, 1, generator=g) - 0.5
    neutral = colour.expand(n, 3, size, size).clone()
    expr = torch.arange(n) % 2 * 3  # classes 0 (neutral) and 3
    image = neutral.clone()
    image[expr != NEUTRAL_ID, :, 4:10, 4:10] = 0.8
    f_ip = torch.cat([colour.flatten(1), torch.zeros(n, d - 3)], 1)
    f_exp = torch.zeros(n, d)
    f_exp[:, -1] = (expr != NEUTRAL_ID).float()
    faces = {"image": image, "neutral": neutral, "expression": expr}
    return torch.stack([f_ip, f_exp], 1), faces


def neutral_features(feats: torch.Tensor) -> torch.Tensor:
    out = feats.clone()
    out[:, 1] = 0  # the same face without its square: no f_exp
    return out


@pytest.mark.parametrize("squared", [False, True])
def test_refit_learns_to_draw_the_change_that_f_exp_carries(squared: bool) -> None:
    feats, faces = _toy()
    torch.manual_seed(0)
    dec = Decoder(8, 16, base=4, start_norm="none", norm="batch")
    checks = {"val": (feats, faces, neutral_features(feats)), "train": (feats, faces)}
    rows = refit(dec, feats, faces, checks, steps=300, eval_every=150, lr=3e-3, batch=16,
                 squared=squared)  # fmt: skip
    assert [r["step"] for r in rows] == [0, 150, 300]
    first, last = rows[0], rows[-1]
    assert last["train_psnr_ipe"] == last["psnr_ipe"]  # the prefix keeps the checks apart
    # x̂_{i-p-e} learns the face with its square, x̂_{i-p} the neutral face without it
    # (training the two halves the other way round draws no square in the difference).
    assert last["psnr_ipe"] > first["psnr_ipe"] + 5
    assert last["expression_change_cos"] > 0.6 > first["expression_change_cos"] + 0.3
    assert last["expression_gain"] > 0.5
    # The decode of the neutral face's features lacks the square the face's has.
    assert last["response_cos"] > 0.6 and last["response_gain"] > 0.5
    assert "train_response_cos" not in last  # the train check has no neutral features
    assert abs(last["expression_rms"] - first["expression_rms"]) < 1e-6  # the data's own


def test_measure_scores_a_decoder_that_draws_nothing_of_the_change() -> None:
    feats, faces = _toy()
    feats = feats.clone()
    feats[:, 1] = 0  # f_exp zero: the two decodes are the same image
    dec = Decoder(8, 16, base=4, start_norm="none", norm="batch")
    m = measure(dec, feats, faces, feats)  # the "neutral" faces' features: the same
    assert m["expression_change_cos"] == 0.0 and m["expression_gain"] == 0.0
    assert m["response_cos"] == 0.0 and m["response_gain"] == 0.0
    assert m["decode_change_rms"] == 0.0 and m["expression_rms"] > 0.1


def test_refit_grid_shape() -> None:
    feats, faces = _toy(n=12)
    dec = Decoder(8, 16, base=4, start_norm="none", norm="batch")
    grid = refit_grid(dec, feats, faces, rows=4)
    assert grid.dtype.name == "uint8" and grid.shape[1] == 6 * (16 + 2) + 2
    assert grid.shape[0] > 4 * (16 + 2)  # four rows plus the label band


class _PatchJudge(torch.nn.Module):
    """Logits (neutral, expressive): the expressive one grows with the patch's brightness."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bright = x[:, :, 4:10, 4:10].mean((1, 2, 3)) - x.mean((1, 2, 3))
        return torch.stack([torch.zeros_like(bright), 20 * bright], 1)


@pytest.mark.parametrize("weight", [0.0, 1.0])
def test_judge_term_asks_the_expressive_decode_for_what_d_sees(weight: float) -> None:
    feats, faces = _toy()
    faces["image"] = faces["neutral"].clone()  # no square anywhere: only D can ask for one
    faces["label"] = (faces["expression"] != NEUTRAL_ID).long()
    faces["neutral_label"] = 0
    torch.manual_seed(0)
    dec = Decoder(8, 16, base=4, start_norm="none", norm="batch")
    refit(dec, feats, faces, {}, steps=200, eval_every=200, lr=3e-3, batch=16,
          judge=_PatchJudge(), judge_weight=weight)  # fmt: skip
    dec.eval()
    with torch.no_grad():
        expr = faces["expression"] != NEUTRAL_ID
        f = feats[expr]
        ip, ipe = dec(f[:, 0]), dec(f[:, 0] + f[:, 1])
    patch = (ipe - ip)[:, :, 4:10, 4:10].mean()
    if weight:  # D wants the patch bright in x̂_{i-p-e} and not in x̂_{i-p}
        assert patch > 0.1
    else:
        assert abs(patch) < 0.05


def test_blur_reference_falls_from_the_whole_change_with_sigma() -> None:
    from facefactors.experiments.decoder_refit import blur_reference

    _, faces = _toy(n=8)
    texture = 0.1 * torch.randn(8, 3, 16, 16, generator=torch.Generator().manual_seed(2))
    faces = {**faces, "image": faces["image"] + texture, "neutral": faces["neutral"] + texture}
    rows = blur_reference(faces, (0.2, 1.0, 3.0))
    assert [r["sigma"] for r in rows] == [0.2, 1.0, 3.0]
    assert rows[0]["expression_gain"] > 0.99 and rows[0]["expression_change_cos"] > 0.99
    gains = [r["expression_gain"] for r in rows]
    psnrs = [r["psnr"] for r in rows]
    assert gains[0] > gains[1] > gains[2] > 0 and psnrs[0] > psnrs[1] > psnrs[2]


def test_main_names_a_missing_run_in_one_sentence(tmp_path) -> None:
    from facefactors.experiments.decoder_refit import main

    missing = tmp_path / "last.pt"
    with pytest.raises(
        SystemExit, match=rf"decoder_refit: Checkpoint file {missing} does not exist"
    ):
        main(["--run", str(missing)])
