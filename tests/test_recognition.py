"""Identity pretraining: margin heads, identity folders, verification, training, CLI."""

from __future__ import annotations

import argparse
import json
import math

import numpy as np
import pytest
import torch
from PIL import Image

from facefactors.checkpoint import load_checkpoint
from facefactors.config import from_dict
from facefactors.errors import ConfigError, DataError, FaceFactorsError, NonFiniteLossError
from facefactors.imaging import from_uint8, to_uint8
from facefactors.nets import create_backbone
from facefactors.recognition.data import CachedIdentities, IdentityFolder
from facefactors.recognition.margin import MarginHead, arcface_logits, cosface_logits
from facefactors.recognition.train import PretrainConfig, build_data, pretrain
from facefactors.recognition.verify import (
    best_threshold,
    kfold_accuracy,
    make_pairs,
    verification_metrics,
)

# ---------------------------------------------------------------- margin heads


def test_arcface_logits_hand_computed() -> None:
    # Two classes, the sample at 60° from class 0 (its label) and 120° from class 1.
    cos = torch.tensor([[math.cos(math.pi / 3), math.cos(2 * math.pi / 3)]])
    out = arcface_logits(cos, torch.tensor([0]), s=64.0, m=0.5)
    expected = [64 * math.cos(math.pi / 3 + 0.5), 64 * math.cos(2 * math.pi / 3)]
    assert out[0].tolist() == pytest.approx(expected, abs=1e-4)


def test_arcface_fallback_beyond_pi() -> None:
    # θ = 170° and m = 0.5 rad: θ + m > π, so the target uses cos θ − m·sin m.
    c = math.cos(math.radians(170))
    out = arcface_logits(torch.tensor([[0.1, c]]), torch.tensor([1]), s=10.0, m=0.5)
    assert out[0].tolist() == pytest.approx([1.0, 10 * (c - 0.5 * math.sin(0.5))], abs=1e-4)
    # The target logit keeps decreasing with the angle across the switch-over point.
    thetas = torch.linspace(0.1, math.pi - 0.01, 200)
    t = arcface_logits(torch.cos(thetas)[:, None], torch.zeros(200, dtype=torch.long), 1.0, 0.5)[
        :, 0
    ]
    assert bool((t[1:] < t[:-1]).all())


def test_arcface_gradient_finite_at_cos_one_and_cosface() -> None:
    cos = torch.tensor([[1.0, -1.0]], requires_grad=True)
    arcface_logits(cos, torch.tensor([0])).sum().backward()
    assert torch.isfinite(cos.grad).all()
    out = cosface_logits(torch.tensor([[0.5, 0.2]]), torch.tensor([1]), s=10.0, m=0.35)
    assert out[0].tolist() == pytest.approx([5.0, -1.5], abs=1e-6)


def test_margin_head_cosines() -> None:
    head = MarginHead(2, 2, "arcface", s=1.0, m=0.0)
    with torch.no_grad():
        head.weight.copy_(torch.tensor([[2.0, 0.0], [0.0, 3.0]]))
    emb = torch.tensor([[5.0, 5.0]])
    assert head.cosines(emb).tolist()[0] == pytest.approx([math.sqrt(0.5)] * 2, abs=1e-6)
    # With m = 0 and s = 1 ArcFace reduces to the plain cosines.
    assert head(emb, torch.tensor([0])).tolist()[0] == pytest.approx([math.sqrt(0.5)] * 2, abs=1e-5)


# ---------------------------------------------------------------- identity folders


def _write_tree(root, ids: int = 2, per: int = 2, size: int = 20) -> None:
    rng = np.random.default_rng(0)
    for k in range(ids):
        for j in range(per):
            img = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
            (root / f"person_{k}").mkdir(parents=True, exist_ok=True)
            Image.fromarray(img).save(root / f"person_{k}" / f"{j}.jpg", quality=90)


def test_identity_folder_reads_tree(tmp_path) -> None:
    _write_tree(tmp_path, ids=2, per=2)
    Image.new("RGB", (10, 12), (255, 0, 0)).save(tmp_path / "person_1" / "red.png")
    (tmp_path / "person_1" / "notes.txt").write_text("not an image")
    (tmp_path / "empty_person").mkdir()
    ds = IdentityFolder(tmp_path, size=16)
    assert ds.names == ["person_0", "person_1"] and len(ds) == 5
    assert ds.labels.tolist() == [0, 0, 1, 1, 1]
    item = ds[4]  # red.png, sorted after 0.jpg and 1.jpg
    assert item["identity"] == 1 and item["image"].shape == (3, 16, 16)
    assert item["image"][0].eq(1.0).all() and item["image"][1:].eq(-1.0).all()
    held = IdentityFolder(tmp_path, size=16, identities=["person_1"])
    assert held.labels.tolist() == [0, 0, 0] and held.num_identities == 1


def test_identity_folder_errors(tmp_path) -> None:
    with pytest.raises(DataError, match="does not exist"):
        IdentityFolder(tmp_path / "nope", size=16)
    (tmp_path / "a").mkdir()
    with pytest.raises(DataError, match="holds no images"):
        IdentityFolder(tmp_path, size=16)
    (tmp_path / "a" / "bad.jpg").write_bytes(b"\xff\xd8 definitely not a jpeg")
    ds = IdentityFolder(tmp_path, size=16)
    with pytest.raises(DataError, match="bad.jpg"):
        ds[0]
    with pytest.raises(DataError, match="identity 'zz'"):
        IdentityFolder(tmp_path, size=16, identities=["zz"])


def test_cached_identities_reindex_and_uint8_roundtrip() -> None:
    x = torch.tensor([-1.0, 0.0, 1.0]).view(1, 3, 1, 1)
    assert to_uint8(x).flatten().tolist() == [0, 128, 255]
    assert from_uint8(to_uint8(x)).flatten().tolist() == pytest.approx(
        [-1.0, 1 / 255, 1.0], abs=1e-6
    )
    ds = CachedIdentities(
        torch.zeros(4, 3, 2, 2, dtype=torch.uint8), torch.tensor([907, 12, 907, 40])
    )
    assert ds.labels.tolist() == [2, 0, 2, 1] and ds.num_identities == 3 and ds[3]["identity"] == 1
    with pytest.raises(DataError):
        CachedIdentities(torch.zeros(4, 3, 2, 2), torch.arange(4))


# ---------------------------------------------------------------- verification


def test_best_threshold_and_auc_hand_computed() -> None:
    scores = np.array([0.9, 0.8, 0.3, 0.2])
    same = np.array([True, False, True, False])
    t, acc = best_threshold(scores, same)
    # Splits: >0.25 → 3/4 correct; >0.85 → 3/4; none does better; ties go to the lowest.
    assert acc == pytest.approx(0.75) and t == pytest.approx(0.25)
    m = verification_metrics(scores, same, folds=2)
    assert m["auc"] == pytest.approx(0.75)  # 3 of the 4 (same, different) pairs are ordered right


def test_separable_embeddings_give_perfect_accuracy() -> None:
    rng = np.random.default_rng(0)
    same = rng.random(200) < 0.5
    scores = np.where(same, rng.uniform(0.6, 1.0, 200), rng.uniform(-0.2, 0.4, 200))
    assert kfold_accuracy(scores, same, folds=10) == (1.0, 0.0)
    m = verification_metrics(scores, same)
    assert m["auc"] == 1.0 and 0.4 <= m["best_threshold"] <= 0.6 and m["best_acc"] == 1.0
    # Ties between a same and a different pair cannot be split: at best half of them right.
    assert best_threshold(np.zeros(4), np.array([1, 0, 1, 0], bool))[1] == 0.5


def test_make_pairs_balanced_and_correct() -> None:
    labels = np.repeat(np.arange(5), 3)
    a, b, same = make_pairs(labels, 40, seed=1)
    assert same.sum() == 20 and (~same).sum() == 20
    assert (labels[a] == labels[b]).tolist() == same.tolist() and (a != b).all()
    with pytest.raises(DataError, match="two identities"):
        make_pairs(np.zeros(5), 10)


# ---------------------------------------------------------------- training


def _toy_identities(ids: int, per: int, size: int = 32, seed: int = 0) -> CachedIdentities:
    """Each identity is a fixed smooth colour pattern; its images add pixel noise."""
    g = torch.Generator().manual_seed(seed)
    base = torch.nn.functional.interpolate(torch.rand(ids, 3, 4, 4, generator=g) * 2 - 1, size=size)
    imgs = base.repeat_interleave(per, 0) + 0.3 * torch.randn(ids * per, 3, size, size, generator=g)
    return CachedIdentities(to_uint8(imgs), torch.arange(ids).repeat_interleave(per) + 100)


def _tiny_cfg(**kw) -> PretrainConfig:
    base = dict(
        width=4,
        input_size=32,
        epochs=4,
        batch_size=16,
        lr=0.1,
        margin_s=16.0,
        margin_m=0.2,
        flip=False,
        verify_pairs=40,
        verify_folds=4,
        log_every=1,
        warmup_epochs=0.5,
    )
    return from_dict(PretrainConfig, {**base, **kw})


def test_short_training_lowers_loss_and_backbone_roundtrips(tmp_path) -> None:
    cfg = _tiny_cfg()
    res = pretrain(cfg, tmp_path, _toy_identities(6, 8), _toy_identities(4, 4, seed=1))
    lines = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    losses = [r["loss/arcface"] for r in lines if "loss/arcface" in r]
    assert len(losses) == 12 and np.mean(losses[-3:]) < 0.7 * np.mean(losses[:3])
    assert sum("verify/acc" in r for r in lines) == 4 and (tmp_path / "config.yaml").is_file()
    saved = load_checkpoint(res.backbone_path)
    assert (
        saved["arch"] == "resnet18_fc" and saved["verification"]["acc"] == res.verification["acc"]
    )
    assert saved["config"]["width"] == 4
    model = create_backbone("resnet18_fc", width=4, input_size=32, checkpoint=res.backbone_path)
    for k, v in model.state_dict().items():
        assert torch.equal(v, saved["state_dict"][k]), k
    with pytest.raises(FaceFactorsError):  # the width is part of the contract
        create_backbone("resnet18", width=8, input_size=32, checkpoint=res.backbone_path)


def test_iresnet_pretrain_roundtrip(tmp_path) -> None:
    cfg = _tiny_cfg(
        arch="iresnet18", epochs=1, optimizer="adamw", lr=1e-3, bf16=True, channels_last=True
    )
    res = pretrain(cfg, tmp_path, _toy_identities(4, 4), _toy_identities(3, 3, seed=1))
    model = create_backbone(
        "iresnet18", width=4, input_size=32, checkpoint=res.backbone_path
    ).eval()
    assert model(torch.zeros(1, 3, 32, 32)).shape == (1, 32)
    assert 0.0 <= res.verification["acc"] <= 1.0


def test_non_finite_loss_stops_with_step(tmp_path) -> None:
    class Poisoned(CachedIdentities):
        def __getitem__(self, i: int) -> dict:
            return {"image": torch.full((3, 32, 32), float("nan")), "identity": int(self.labels[i])}

    data = _toy_identities(2, 4)
    bad = Poisoned(data.images, data.labels)
    with pytest.raises(NonFiniteLossError, match="loss/arcface became nan at step 1"):
        pretrain(_tiny_cfg(epochs=1, batch_size=4), tmp_path, bad, data)
    assert not (tmp_path / "backbone.pt").exists()  # nothing was saved from the bad step


def _lines(path) -> list[dict]:
    """metrics.jsonl without the wall-clock field, which no two runs share."""
    rows = [json.loads(x) for x in path.read_text().splitlines()]
    return [{k: v for k, v in r.items() if k != "images_per_s"} for r in rows]


class _KilledAfter(CachedIdentities):
    """Raises KeyboardInterrupt (a Ctrl-C) once ``limit`` items have been read."""

    def __init__(self, base: CachedIdentities, limit: int) -> None:
        super().__init__(base.images, base.labels)
        self.limit, self.reads = limit, 0

    def __getitem__(self, i: int) -> dict:
        self.reads += 1
        if self.reads > self.limit:
            raise KeyboardInterrupt
        return super().__getitem__(i)


def test_pretrain_resumes_bit_for_bit(tmp_path, capsys) -> None:
    """Killed in epoch 2, resumed: the same metrics lines, verification and weights.

    The epoch-end checkpoint (step 3) holds an open averaging window (step 3 alone,
    log_every=2), so the first line after the resume (step 4) matches only if the
    window is restored; flips draw from the global RNG, which must be restored too.
    The kill also cut the last metrics line in half: it is dropped with a warning.
    """
    data, held = _toy_identities(6, 8), _toy_identities(4, 4, seed=1)
    cfg = _tiny_cfg(epochs=2, flip=True, log_every=2)  # 48 images, batch 16: 3 steps/epoch
    whole = pretrain(cfg, tmp_path / "whole", data, held)
    with pytest.raises(ConfigError, match="--resume"):  # a fresh run never overwrites one
        pretrain(cfg, tmp_path / "whole", data, held)
    with pytest.raises(KeyboardInterrupt):  # killed while loading step 5's batch
        pretrain(cfg, tmp_path / "cut", _KilledAfter(data, 4 * 16 + 3), held)
    assert load_checkpoint(tmp_path / "cut" / "checkpoints" / "last.pt")["step"] == 3
    log = tmp_path / "cut" / "metrics.jsonl"
    full_lines = log.read_text().splitlines()
    assert json.loads(full_lines[-1])["step"] == 4  # logged after the checkpoint: redone
    with log.open("a") as f:  # the next line, torn by the kill mid-write
        f.write('{"step": 6, "epoch": 1, "loss/arc')
    capsys.readouterr()
    torch.manual_seed(123)  # a new process starts with other RNG states
    resumed = pretrain(cfg, tmp_path / "cut", data, held, resume=True)
    err = capsys.readouterr().err
    assert f"warning: {log} line {len(full_lines) + 1} was cut off" in err
    assert f"dropped 1 line(s) of {log} logged after the checkpoint's step 3" in err
    assert _lines(tmp_path / "cut" / "metrics.jsonl") == _lines(
        tmp_path / "whole" / "metrics.jsonl"
    )
    assert resumed.verification == whole.verification
    a, b = load_checkpoint(whole.backbone_path), load_checkpoint(resumed.backbone_path)
    for k, v in a["state_dict"].items():
        assert torch.equal(v, b["state_dict"][k]), k
    ca = load_checkpoint(tmp_path / "whole" / "checkpoints" / "last.pt")
    cb = load_checkpoint(tmp_path / "cut" / "checkpoints" / "last.pt")
    for k, v in ca["model"].items():  # the margin head too
        assert torch.equal(v, cb["model"][k]), k


def test_a_fresh_start_drops_a_dead_runs_metrics(tmp_path, capsys) -> None:
    """Killed before its first checkpoint, then started afresh: no line of the dead run."""
    data, held = _toy_identities(6, 8), _toy_identities(4, 4, seed=1)
    cfg = _tiny_cfg(epochs=1, log_every=1)
    whole = tmp_path / "whole"
    pretrain(cfg, whole, data, held)
    with pytest.raises(KeyboardInterrupt):  # killed while loading step 3's batch
        pretrain(cfg, tmp_path / "dead", _KilledAfter(data, 2 * 16 + 3), held)
    log = tmp_path / "dead" / "metrics.jsonl"
    assert len(log.read_text().splitlines()) == 2
    assert not (tmp_path / "dead" / "checkpoints" / "last.pt").exists()
    capsys.readouterr()
    pretrain(cfg, tmp_path / "dead", data, held)
    assert f"{log} held 2 line(s) of a run that stopped" in capsys.readouterr().err
    assert _lines(log) == _lines(whole / "metrics.jsonl")


def test_folder_data_holds_out_identities(tmp_path) -> None:
    _write_tree(tmp_path / "faces", ids=5, per=3)
    cfg = _tiny_cfg(data=str(tmp_path / "faces"), verify_identities=2)
    train, held = build_data(cfg)
    assert train.num_identities == 3 and held.num_identities == 2 and len(held) == 6
    # The held-out images are exactly those of the two identities missing from training.
    held_names = sorted({f"person_{k}" for k in range(5)} - set(train.names))
    expected = IdentityFolder(tmp_path / "faces", 32, held_names)
    assert torch.equal(held.images, torch.stack([to_uint8(expected[i]["image"]) for i in range(6)]))
    with pytest.raises(ConfigError, match="verify_identities"):
        build_data(_tiny_cfg(data=str(tmp_path / "faces"), verify_identities=4))


# ---------------------------------------------------------------- command line


def _cli(argv: list[str]) -> argparse.Namespace:
    from facefactors.commands import pretrain_id

    parser = argparse.ArgumentParser()
    pretrain_id.register(parser.add_subparsers(dest="command"))
    return parser.parse_args(argv)


def test_cli_trains_on_a_folder(tmp_path, capsys) -> None:
    _write_tree(tmp_path / "faces", ids=5, per=3, size=24)
    args = _cli(
        [
            "pretrain-id",
            "--out",
            str(tmp_path / "run"),
            "--data",
            str(tmp_path / "faces"),
            "--set",
            "width=4",
            "--set",
            "input_size=32",
            "--set",
            "epochs=1",
            "--set",
            "verify_identities=2",
            "--set",
            "verify_pairs=20",
            "--set",
            "verify_folds=2",
            "--set",
            "batch_size=4",
        ]
    )
    assert args.func(args) == 0
    assert "verification on held-out identities" in capsys.readouterr().out
    assert (tmp_path / "run" / "backbone.pt").is_file()


def test_cli_errors(tmp_path) -> None:
    with pytest.raises(DataError, match="does not exist"):
        args = _cli(["pretrain-id", "--out", str(tmp_path), "--data", str(tmp_path / "missing")])
        args.func(args)
    with pytest.raises(ConfigError, match="Unknown config key 'epoch'"):
        args = _cli(["pretrain-id", "--out", str(tmp_path), "--set", "epoch=3"])
        args.func(args)
    with pytest.raises(ConfigError, match="Unknown preset 'nope'"):
        args = _cli(["pretrain-id", "--out", str(tmp_path), "--config", "nope"])
        args.func(args)
    with pytest.raises(ConfigError, match="'arch' must be one of"):
        args = _cli(["pretrain-id", "--out", str(tmp_path), "--set", "arch=vgg"])
        args.func(args)
