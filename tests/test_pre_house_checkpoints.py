"""Checkpoints written before the "one house" move still load and resume.

``tests/fixtures/pre_house/`` was written by the code of commit ef13e63 (before
``training/``, ``inference/`` and ``export/`` existed): a tiny IPD-FER run stopped
at step 3 (``ipd_last.pt``), its inference export (``ipd_model.pt``) with the logits
it gave on one image (``ipd_logits.pt``), and an identity backbone (``backbone.pt``).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import torch

from facefactors.checkpoint import load_checkpoint
from facefactors.export.classifier import load_expression_model
from facefactors.ipd.train import read_checkpoint, train
from facefactors.nets import create_backbone
from ipd_helpers import random_bundle, tiny_config

FIXTURES = Path(__file__).parent / "fixtures" / "pre_house"


def test_old_export_and_training_checkpoint_give_the_old_logits() -> None:
    ref = load_checkpoint(FIXTURES / "ipd_logits.pt")
    for name in ("ipd_model.pt", "ipd_last.pt"):
        model = load_expression_model(FIXTURES / name)
        torch.testing.assert_close(model(ref["x"]), ref["logits"], rtol=0, atol=1e-6)


def test_old_training_checkpoint_resumes(tmp_path) -> None:
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    shutil.copy(FIXTURES / "ipd_last.pt", run / "checkpoints" / "last.pt")
    state = read_checkpoint(run / "checkpoints" / "last.pt")
    assert "metrics_window" not in state  # the old layout, as written
    cfg = tiny_config("ipd", epochs=2)
    cfg.model.width, cfg.model.decoder_channels = 2, 2
    result = train(cfg, run, resume=True, data=random_bundle(8))
    assert result.step == 4 and result.epoch == 2  # 2 steps per epoch, resumed at 3
    assert read_checkpoint(run / "checkpoints" / "last.pt")["step"] == 4


def test_old_identity_backbone_loads_strictly() -> None:
    saved = load_checkpoint(FIXTURES / "backbone.pt")
    net = create_backbone("resnet18", width=2, input_size=32, checkpoint=FIXTURES / "backbone.pt")
    for k, v in net.state_dict().items():
        assert torch.equal(v, saved["state_dict"][k]), k
