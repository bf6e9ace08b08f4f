"""A fresh synthetic test set: ``render_test_set(first_identity=K)`` skips the first K people."""

from __future__ import annotations

import torch

from facefactors.experiments.testset import render_test_set
from facefactors.ipd.config import SEVEN_CLASSES


def test_first_identity_gives_the_later_people_of_the_same_split():
    classes = list(SEVEN_CLASSES)
    whole = render_test_set(3, 2, 32, 0, classes, intensity=(1.0, 1.6))
    later = render_test_set(1, 2, 32, 0, classes, intensity=(1.0, 1.6), first_identity=2)
    # The third person of the default set, face for face (an ignored offset gives the first).
    assert torch.equal(later.identity, whole.identity[4:])
    assert torch.equal(later.image, whole.image[4:])
    assert not torch.equal(later.image, whole.image[:2])


def test_a_negative_first_identity_is_refused_in_one_sentence():
    import pytest

    from facefactors.errors import ConfigError

    with pytest.raises(ConfigError, match=r"first_identity must be >= 0, got -1\."):
        render_test_set(1, 2, 32, 0, list(SEVEN_CLASSES), first_identity=-1)


def test_collect_scores_the_response_against_the_decode_of_the_true_neutral(monkeypatch):
    """A perfect autoencoder whose x̂_{i-p} is blank: its response to the expression is the
    whole change (cos 1, gain 1), while the decodes' difference x − 0 is not x − x_n."""
    from facefactors.experiments.synth_eval import collect
    from facefactors.ipd.config import ModelConfig
    from facefactors.ipd.model import IPDModel

    test = render_test_set(2, 4, 32, 0, list(SEVEN_CLASSES), intensity=(1.0, 1.6))
    torch.manual_seed(0)
    model = IPDModel(ModelConfig(variant="ipd", width=4, decoder_channels=4), 32).eval()

    def generate(x):
        return {"id": torch.zeros_like(x), "ip": torch.zeros_like(x), "ipe": x.clone()}

    monkeypatch.setattr(model, "generate", generate)
    rec = collect(model, test, batch=3).reconstruction
    assert abs(rec["expression_response_cos"] - 1) < 1e-5
    assert abs(rec["expression_response_gain"] - 1) < 1e-5
    assert rec["expression_change_cos"] < 0.9  # x − 0 points elsewhere than x − x_n
    assert abs(rec["expression_gain"] - 1) > 0.05
