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
