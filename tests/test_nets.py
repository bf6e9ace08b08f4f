"""Backbones: shapes, exact third-party key layouts, and checkpoint loading."""

from __future__ import annotations

import pytest
import torch

from facefactors.errors import CheckpointError, ConfigError
from facefactors.nets import create_backbone, load_backbone_weights

BN = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")


def _bn(prefix: str) -> list[str]:
    return [f"{prefix}.{s}" for s in BN]


def torchvision_resnet18_keys() -> list[str]:
    """The keys of ``torchvision.models.resnet18().state_dict()``, written from its layout."""
    keys = ["conv1.weight", *_bn("bn1")]
    for layer in range(1, 5):
        for block in range(2):
            p = f"layer{layer}.{block}"
            keys += [f"{p}.conv1.weight", *_bn(f"{p}.bn1"), f"{p}.conv2.weight", *_bn(f"{p}.bn2")]
            if layer > 1 and block == 0:
                keys += [f"{p}.downsample.0.weight", *_bn(f"{p}.downsample.1")]
    return keys + ["fc.weight", "fc.bias"]


def insightface_iresnet_keys(layers: list[int]) -> list[str]:
    """The keys of arcface_torch's ``iresnet*`` backbone, written from its layout."""
    keys = ["conv1.weight", *_bn("bn1"), "prelu.weight"]
    for layer, n in enumerate(layers, start=1):
        for block in range(n):
            p = f"layer{layer}.{block}"
            keys += [*_bn(f"{p}.bn1"), f"{p}.conv1.weight", *_bn(f"{p}.bn2")]
            keys += [f"{p}.prelu.weight", f"{p}.conv2.weight", *_bn(f"{p}.bn3")]
            if block == 0:  # every stage starts with stride 2, so it always projects
                keys += [f"{p}.downsample.0.weight", *_bn(f"{p}.downsample.1")]
    return keys + [*_bn("bn2"), "fc.weight", "fc.bias", *_bn("features")]


def _random_like(model: torch.nn.Module, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    out = {}
    for k, v in model.state_dict().items():
        out[k] = v.clone() if v.dtype == torch.long else torch.randn(v.shape, generator=g)
    return out


@pytest.mark.parametrize("name", ["resnet18", "iresnet18", "iresnet34", "iresnet50"])
@pytest.mark.parametrize("size", [112, 64])
def test_forward_shapes(name: str, size: int) -> None:
    model = create_backbone(name, width=4, input_size=size).eval()
    x = torch.randn(2, 3, size, size)
    fmap = model.forward_features(x)
    final = {112: 4, 64: 2}[size] if name == "resnet18" else {112: 7, 64: 4}[size]
    assert fmap.shape == (2, 32, final, final)
    assert model(x).shape == (2, 32) and model.num_features == 32


def test_iresnet_embedding_dim_and_default_sizes() -> None:
    model = create_backbone("iresnet18", width=4, input_size=64, embedding_dim=20)
    assert model.fc.in_features == 32 * 4 * 4 and model(torch.randn(2, 3, 64, 64)).shape == (2, 20)
    full = create_backbone("iresnet18")
    assert full.fc.in_features == 25088 and full.num_features == 512
    assert create_backbone("resnet18").num_features == 512


def test_resnet18_has_exact_torchvision_keys_and_size() -> None:
    model = create_backbone("resnet18")
    expected = [k for k in torchvision_resnet18_keys() if not k.startswith("fc.")]
    assert list(model.state_dict()) == expected
    # torchvision's resnet18 has 11,689,512 parameters, 513,000 of them in fc.
    assert sum(p.numel() for p in model.parameters()) == 11_689_512 - 513_000


@pytest.mark.parametrize(
    "name,layers",
    [("iresnet18", [2, 2, 2, 2]), ("iresnet34", [3, 4, 6, 3]), ("iresnet50", [3, 4, 14, 3])],
)
def test_iresnet_has_exact_insightface_keys(name: str, layers: list[int]) -> None:
    model = create_backbone(name, width=4)
    assert sorted(model.state_dict()) == sorted(insightface_iresnet_keys(layers))


def test_torchvision_checkpoint_loads_strictly_with_prefix_and_classifier() -> None:
    model = create_backbone("resnet18", width=4)
    ref = create_backbone("resnet18", width=4)
    weights = _random_like(model)
    ref.load_state_dict(weights)
    # An MS-Celeb-style file: DDP prefix, a wrapper dict and a 12,666-way classifier.
    ckpt = {f"module.{k}": v for k, v in weights.items()}
    ckpt["module.fc.weight"] = torch.randn(12666, 32)
    ckpt["module.fc.bias"] = torch.randn(12666)
    report = load_backbone_weights(model, {"state_dict": ckpt, "epoch": 3}, strict=True)
    assert report.ignored == ["fc.bias", "fc.weight"] and not report.missing
    for k, v in model.state_dict().items():
        assert torch.equal(v, ref.state_dict()[k]), k


def test_insightface_checkpoint_loads_strictly_without_num_batches_tracked(tmp_path) -> None:
    model = create_backbone("iresnet18", width=4, input_size=64)
    weights = {k: v for k, v in _random_like(model, 1).items() if "num_batches" not in k}
    # arcface_torch saves the backbone bare; a PartialFC / margin head may sit beside it.
    ckpt = {f"backbone.{k}": v for k, v in weights.items()}
    ckpt["weight"] = torch.randn(10, 16)
    ckpt["head.kernel"] = torch.randn(16, 10)
    path = tmp_path / "backbone.pth"
    torch.save(ckpt, path)
    loaded = create_backbone("iresnet18", width=4, input_size=64, checkpoint=path)
    assert torch.equal(loaded.fc.weight, weights["fc.weight"])
    assert torch.equal(loaded.layer4[1].prelu.weight, weights["layer4.1.prelu.weight"])


def test_safetensors_checkpoint(tmp_path) -> None:
    from safetensors.torch import save_file

    model = create_backbone("resnet18", width=4)
    weights = _random_like(model, 2)
    save_file(weights, str(tmp_path / "w.safetensors"))
    loaded = create_backbone("resnet18", width=4, checkpoint=tmp_path / "w.safetensors")
    assert torch.equal(
        loaded.layer3[0].downsample[0].weight, weights["layer3.0.downsample.0.weight"]
    )


def test_mismatches_are_reported_in_one_message() -> None:
    model = create_backbone("resnet18", width=4)
    weights = _random_like(model)
    del weights["layer1.0.conv1.weight"]
    weights["layer2.0.conv2.weight"] = torch.randn(1, 1, 3, 3)
    weights["extra.thing"] = torch.zeros(1)
    before = model.conv1.weight.clone()
    with pytest.raises(CheckpointError) as err:
        load_backbone_weights(model, weights)
    msg = str(err.value)
    assert "missing keys layer1.0.conv1.weight" in msg
    assert "unexpected keys extra.thing" in msg
    assert "layer2.0.conv2.weight (1, 1, 3, 3) vs (8, 8, 3, 3)" in msg
    assert torch.equal(model.conv1.weight, before)  # strict failure loads nothing


def test_non_strict_loads_matching_keys_and_reports() -> None:
    model = create_backbone("iresnet18", width=4, input_size=64)
    weights = _random_like(model)
    weights["fc.weight"] = torch.randn(7, 7)
    report = load_backbone_weights(model, weights, strict=False)
    assert report.mismatched == ["fc.weight (7, 7) vs (32, 512)"]
    assert torch.equal(model.conv1.weight, weights["conv1.weight"])


def test_wrong_width_and_truncated_file_and_arch(tmp_path) -> None:
    small = create_backbone("resnet18", width=4)
    path = tmp_path / "b.pt"
    torch.save({"state_dict": small.state_dict(), "arch": "resnet18"}, path)
    with pytest.raises(CheckpointError, match="shape mismatches"):
        create_backbone("resnet18", width=8, checkpoint=path)
    with pytest.raises(
        CheckpointError, match="holds a 'resnet18' backbone, not the requested 'iresnet18'"
    ):
        create_backbone("iresnet18", width=4, checkpoint=path)
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        create_backbone("resnet18", width=4, checkpoint=path)
    with pytest.raises(CheckpointError, match="holds no tensors"):
        load_backbone_weights(small, {"epoch": 1})


def test_unknown_backbone_and_bad_sizes() -> None:
    with pytest.raises(
        ConfigError, match="Unknown backbone 'nope'; valid names: resnet18, resnet18_fc, iresnet18"
    ):
        create_backbone("nope")
    with pytest.raises(ConfigError, match="embedding_dim=512 needs width=64"):
        create_backbone("resnet18", width=4, embedding_dim=512)


def test_bf16_autocast_and_channels_last() -> None:
    for name in ("resnet18", "iresnet18"):
        model = create_backbone(name, width=4, input_size=64).eval()
        model = model.to(memory_format=torch.channels_last)
        x = torch.randn(2, 3, 64, 64).to(memory_format=torch.channels_last)
        with torch.no_grad():
            ref = model(x)
            with torch.autocast("cpu", dtype=torch.bfloat16):
                out = model(x)
        assert out.dtype == torch.bfloat16
        assert torch.allclose(out.float(), ref, atol=0.1 * ref.abs().max().item())
