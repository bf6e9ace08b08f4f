"""IPD-FER networks: shapes per component and variant, the frozen E_id, the inference export."""

from __future__ import annotations

import pytest
import torch

from facefactors.checkpoint import save_checkpoint
from facefactors.errors import CheckpointError
from facefactors.export.classifier import ExpressionClassifier, load_expression_model
from facefactors.ipd.config import ModelConfig
from facefactors.ipd.decoder import Decoder, stage_channels
from facefactors.ipd.export import inference_state
from facefactors.ipd.model import IPDModel
from ipd_helpers import one_thread  # noqa: F401 - autouse fixture


def tiny(variant: str = "ipd", size: int = 32, **kw) -> IPDModel:
    torch.manual_seed(0)
    cfg = ModelConfig(variant=variant, width=4, decoder_channels=4, **kw)
    return IPDModel(cfg, size)


@pytest.mark.parametrize("size", [32, 64])
@pytest.mark.parametrize("variant", ["baseline", "id", "ipd"])
def test_forward_shapes(variant: str, size: int) -> None:
    model = tiny(variant, size)
    x = torch.rand(3, 3, size, size) * 2 - 1
    d = model.feature_dim
    assert model.classify(x).shape == (3, 7)
    f = model.encode(x)
    assert f.f_exp.shape == (3, d)
    present = {
        "baseline": ("e_exp", "c_exp"),
        "id": ("e_exp", "c_exp", "e_id", "dec", "d"),
        "ipd": ("e_exp", "c_exp", "e_id", "dec", "d", "e_pose", "c_p"),
    }[variant]
    for name in ("e_id", "e_pose", "c_p", "dec", "d"):
        assert (getattr(model, name) is not None) == (name in present), name
    if variant == "baseline":
        assert f.f_id is None and f.f_pose is None
        return
    assert f.f_id.shape == (3, d)
    assert model.d(x).shape == (3, 7)
    fakes = model.generate(x)
    for key in ("id", "ip", "ipe"):
        assert fakes[key].shape == (3, 3, size, size)
        assert fakes[key].abs().max() <= 1.0
    if variant == "ipd":
        assert f.f_pose.shape == (3, d)
        assert model.c_p(f.f_pose).shape == (3, 5)
        f_ip, f_ipe = model.combine(f)
        torch.testing.assert_close(f_ip, f.f_id + f.f_pose)
        torch.testing.assert_close(f_ipe, f.f_id + f.f_pose + f.f_exp)
    else:
        torch.testing.assert_close(fakes["ip"], fakes["id"])  # f_{i-p} := f_id


def test_extra_neutral_output_when_classes_lack_neutral() -> None:
    ck7 = ["happy", "sad", "surprise", "fear", "disgust", "anger", "contempt"]
    model = tiny("id", classes=ck7)
    assert model.neutral_index == 7
    assert model.d(torch.zeros(2, 3, 32, 32)).shape == (2, 8)
    assert model.classify(torch.zeros(2, 3, 32, 32)).shape == (2, 7)
    with_neutral = tiny("id", classes=["neutral", "happy", "sad"])
    assert with_neutral.neutral_index == 0
    assert with_neutral.d(torch.zeros(2, 3, 32, 32)).shape == (2, 3)


def test_e_id_frozen_and_always_in_eval() -> None:
    model = tiny("ipd")
    model.train()
    assert not model.e_id.training
    assert all(not m.training for m in model.e_id.modules())
    assert model.e_exp.training and model.d.training
    assert all(not p.requires_grad for p in model.e_id.parameters())
    before = {k: v.clone() for k, v in model.e_id.state_dict().items()}
    x = torch.rand(4, 3, 32, 32, requires_grad=True)
    model.identity(x).sum().backward()  # N passes gradients to its input only
    assert x.grad is not None and x.grad.abs().sum() > 0
    for k, v in model.e_id.state_dict().items():
        assert torch.equal(v, before[k]), k


def test_decoder_stages() -> None:
    assert stage_channels(32) == [512, 256, 128, 64, 32]
    assert stage_channels(64) == [512, 512, 256, 128, 64]
    dec = Decoder(8, 112, base=2)
    out = dec(torch.randn(2, 8))
    assert out.shape == (2, 3, 112, 112)
    # Five stages: 1×1 → 7 → 14 → 28 → 56 → 112.
    assert len(dec.stages) == 5
    assert dec.stages[0][0].kernel_size == (7, 7)
    assert Decoder(8, 64, base=2).stages[0][0].kernel_size == (4, 4)


def test_inference_export_roundtrip(tmp_path) -> None:
    model = tiny("ipd").eval()
    x = torch.rand(2, 3, 32, 32)
    state = inference_state(model)
    assert state["classes"] == model.classes
    assert not any(k.startswith(("e_id", "d.", "dec")) for k in state["e_exp"])
    net = ExpressionClassifier.from_state(state)
    torch.testing.assert_close(net(x), model.classify(x))
    save_checkpoint(tmp_path / "model.pt", state)
    torch.testing.assert_close(load_expression_model(tmp_path / "model.pt")(x), model.classify(x))
    save_checkpoint(tmp_path / "other.pt", {"format": "something else"})
    with pytest.raises(CheckpointError, match="other.pt"):
        load_expression_model(tmp_path / "other.pt")


def test_all_encoders_and_d_start_from_the_identity_checkpoint(tmp_path) -> None:
    from facefactors.nets import create_backbone

    torch.manual_seed(1)
    face_net = create_backbone("resnet18", width=4, input_size=32)
    save_checkpoint(
        tmp_path / "backbone.pt", {"state_dict": face_net.state_dict(), "arch": "resnet18"}
    )
    model = tiny("ipd", id_checkpoint=str(tmp_path / "backbone.pt"))
    expected = face_net.state_dict()
    for net in (model.e_id, model.e_pose, model.e_exp, model.d.backbone):
        for k, v in net.state_dict().items():
            assert torch.equal(v, expected[k]), k


def test_first_stage_instance_norm_discards_the_scale_of_the_feature() -> None:
    """Why the old decoder could not follow f_exp's size: IN after the 1×1 → s×s start."""
    from facefactors.ipd.decoder import Decoder

    torch.manual_seed(0)
    f = 10 * torch.randn(4, 32)  # large enough that IN's eps is negligible
    old = Decoder(32, 32, base=4, start_norm="instance").eval()
    new = Decoder(32, 32, base=4, start_norm="none").eval()
    with torch.no_grad():
        blind = (old(f) - old(3.0 * f)).abs().max()  # only IN's eps separates them
        sees = (new(f) - new(3.0 * f)).abs().max()
        shape = new(f).shape
    assert blind < 0.01 and sees > 10 * blind and shape == (4, 3, 32, 32)
    with pytest.raises(ValueError, match="start_norm"):
        Decoder(32, 32, start_norm="group")
    with pytest.raises(ValueError, match="norm must be one of"):
        Decoder(32, 32, norm="layer")


@pytest.mark.parametrize("norm", ["batch", "none", "instance"])
def test_he_init_uses_the_real_fan_in_and_starts_residual_blocks_at_identity(norm) -> None:
    torch.manual_seed(0)
    dec = Decoder(256, 64, base=8, start_norm="none", norm=norm, init="he")
    first, second = dec.stages[0][0], dec.stages[1][0]
    # 1×1 → 4×4: each output pixel sees one tap per input channel; k4 s2: four.
    assert float(first.weight.std()) == pytest.approx((2 / 256) ** 0.5, rel=0.05)
    assert float(second.weight.std()) == pytest.approx((2 / (128 * 4)) ** 0.5, rel=0.05)
    assert all(float(st[0].weight.mean().abs()) < 0.01 for st in dec.stages)
    h = torch.randn(2, 64, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(dec.stages[1][3](h), h)  # the residual block adds 0
    default = Decoder(256, 64, base=8, start_norm="none", norm=norm)
    assert float(default.stages[0][0].weight.std()) < 0.5 * float(first.weight.std())
    with pytest.raises(ValueError, match="init"):
        Decoder(8, 64, base=2, init="xavier")


def test_batch_norm_decoder_decodes_a_face_alone_as_in_a_batch() -> None:
    """Eval mode uses running statistics, so a face's decode does not depend on its batch."""
    model = tiny("ipd", decoder_norm="batch", decoder_start_norm="none")
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in model.dec.modules())
    model.train()
    with torch.no_grad():
        model.dec(torch.randn(6, model.feature_dim))
    model.eval()
    f = torch.randn(4, model.feature_dim)
    with torch.no_grad():
        assert torch.allclose(model.dec(f)[1:2], model.dec(f[1:2]), atol=1e-6)


def test_a_null_id_checkpoint_warns_loudly(capsys) -> None:
    from facefactors.config import load_config
    from facefactors.ipd.checks import warn_random_identity_encoder
    from facefactors.ipd.config import IPDConfig

    cfg = load_config(IPDConfig, "ipd_synth_quick", [])
    with pytest.warns(UserWarning, match="id_checkpoint is null"):
        assert warn_random_identity_encoder(cfg)
    assert "pretrain-id" in capsys.readouterr().err
    cfg.model.id_checkpoint = "runs/pretrain/backbone.pt"
    assert not warn_random_identity_encoder(cfg)


def test_colour_path_starts_at_zero_so_the_decoder_starts_as_the_papers() -> None:
    f = torch.randn(3, 16)
    torch.manual_seed(0)
    paper = Decoder(16, 32, base=2, start_norm="none", norm="none").eval()
    torch.manual_seed(0)
    coloured = Decoder(16, 32, base=2, start_norm="none", norm="none", colour_grid=4).eval()
    assert coloured.colour is not None and paper.colour is None
    with torch.no_grad():
        torch.testing.assert_close(coloured(f), paper(f))
    # an old checkpoint (no colour keys) still loads into the paper's decoder
    paper.load_state_dict(Decoder(16, 32, base=2, start_norm="none", norm="none").state_dict())


def test_colour_path_draws_its_g_by_g_map_per_channel() -> None:
    """to_rgb silenced: the output is tanh of the up-sampled colour map, channel by channel."""
    dec = Decoder(4, 32, base=2, start_norm="none", norm="none", colour_grid=2).eval()
    with torch.no_grad():
        dec.to_rgb.weight.zero_()
        dec.to_rgb.bias.zero_()
        # colour = bias only: channel c, cell (i, j) gets 0.1·(4c + 2i + j) − 0.5
        dec.colour.bias.copy_(torch.arange(12.0) * 0.1 - 0.5)
        out = dec(torch.randn(2, 4))
    cells = (torch.arange(12.0) * 0.1 - 0.5).view(3, 2, 2)
    # align_corners=False: each corner pixel takes its corner cell's value exactly
    corners = {(0, 0): (0, 0), (0, -1): (0, 1), (-1, 0): (1, 0), (-1, -1): (1, 1)}
    for (py, px), (i, j) in corners.items():
        torch.testing.assert_close(out[:, :, py, px], torch.tanh(cells[:, i, j]).expand(2, 3))
    # the centre is the mean of the four cells (bilinear, midway between them)
    centre = out[0, :, 15:17, 15:17].mean((1, 2))
    torch.testing.assert_close(centre, torch.tanh(cells.mean((1, 2))), atol=2e-3, rtol=0)


def test_colour_path_gradcheck_and_bad_grid() -> None:
    torch.manual_seed(0)
    dec = Decoder(4, 16 * 2, base=1, start_norm="none", norm="none", colour_grid=2).double()
    with torch.no_grad():
        dec.colour.weight.normal_()
    f = torch.randn(2, 4, dtype=torch.double, requires_grad=True)
    assert torch.autograd.gradcheck(dec, (f,))
    with pytest.raises(ValueError, match="colour_grid"):
        Decoder(4, 32, base=1, colour_grid=3)


def test_colour_grid_config_key_is_checked() -> None:
    from facefactors.config import load_config
    from facefactors.errors import ConfigError
    from facefactors.ipd.config import IPDConfig, validate_config

    def cfg_with(grid: int) -> IPDConfig:
        return validate_config(
            load_config(IPDConfig, "ipd_synth_quick", [f"model.decoder_colour_grid={grid}"])
        )

    for bad in (5, -1):  # 64 px: 5 does not divide it
        with pytest.raises(ConfigError, match="model.decoder_colour_grid"):
            cfg_with(bad)
    cfg = cfg_with(4)
    assert IPDModel(cfg.model, cfg.data.size).dec.colour_grid == 4
