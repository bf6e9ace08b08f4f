"""The signed face-recognition head of ResNet-18 (backbone ``resnet18_fc``)."""

from __future__ import annotations

import pytest
import torch

from facefactors.nets import create_backbone
from facefactors.nets.resnet import final_map_size


def test_final_map_size_rounds_up_at_each_stride() -> None:
    assert [final_map_size(s) for s in (112, 64, 32, 16)] == [4, 2, 1, 1]
    for size in (112, 64, 48):  # and it is what the trunk really gives
        m = create_backbone("resnet18", width=4, input_size=size).eval()
        side = final_map_size(size)
        assert m.forward_features(torch.zeros(1, 3, size, size)).shape[-2:] == (side, side)


def test_the_fc_embedding_is_signed_where_the_pooled_one_is_not() -> None:
    torch.manual_seed(0)
    x = torch.randn(8, 3, 64, 64)
    pooled = create_backbone("resnet18", width=8, input_size=64).eval()(x)
    signed = create_backbone("resnet18_fc", width=8, input_size=64, embedding_dim=48).eval()
    with torch.no_grad():
        f = signed(x)
    assert (pooled >= 0).all()  # average of ReLU outputs
    assert f.shape == (8, 48) and (f < 0).float().mean() > 0.2


def test_fc_backbone_checkpoint_round_trip_and_arch_check(tmp_path) -> None:
    a = create_backbone("resnet18_fc", width=4, input_size=64).eval()
    state = {"arch": "resnet18_fc", "state_dict": a.state_dict()}
    path = tmp_path / "backbone.pt"
    torch.save(state, path)
    b = create_backbone("resnet18_fc", width=4, input_size=64, checkpoint=path).eval()
    x = torch.randn(2, 3, 64, 64)
    assert torch.equal(a(x), b(x))
    # A pooled ResNet-18 checkpoint lacks the head: refused, not silently half-loaded.
    plain = create_backbone("resnet18", width=4, input_size=64).state_dict()
    with pytest.raises(Exception, match="embed_fc|missing|resnet18"):
        create_backbone("resnet18_fc", width=4, input_size=64, checkpoint=plain)


def test_synth_first_identity_draws_the_same_faces_as_a_slice_of_the_split() -> None:
    from facefactors.synth.dataset import SynthFaces

    whole = SynthFaces("train", identities=5, per_identity=3, size=32, maps=False)
    tail = SynthFaces("train", identities=2, per_identity=3, size=32, maps=False, first_identity=3)
    a, b = whole.batch(range(9, 15)), tail.batch(range(6))
    assert torch.equal(a["image"], b["image"]) and torch.equal(a["expression"], b["expression"])
    assert b["identity"].tolist() == [3, 3, 3, 4, 4, 4]


def test_pretrain_config_checks_the_new_synthetic_keys() -> None:
    from facefactors.errors import ConfigError
    from facefactors.recognition.config import PretrainConfig, validate_config

    with pytest.raises(ConfigError, match="synth_first_identity"):
        validate_config(PretrainConfig(synth_first_identity=-1))
    with pytest.raises(ConfigError, match="synth_intensity"):
        validate_config(PretrainConfig(synth_intensity=[1.6, 1.0]))
