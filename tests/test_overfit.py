"""The overfitting lesson's computation: the same net, small data, with and without remedies."""

from __future__ import annotations

import math

from tui_nn.lessons.overfit import SmallCNN, gap_table, overfit_curves


def test_curves_per_epoch_and_the_gap_opens_without_remedies():
    seen: list[tuple[str, int]] = []
    curves = overfit_curves(("plain", "augment"), n_train=96, n_val=200, epochs=10, batch_size=8,
                            on_epoch=lambda c: seen.append((c.variant, len(c.val_loss))))
    plain, augmented = curves
    assert seen == [("plain", i) for i in range(1, 11)] + [("augment", i) for i in range(1, 11)]
    assert len(plain.train_loss) == len(plain.val_loss) == len(plain.val_accuracy) == 10
    # 96 samples are memorised: training loss falls far below validation loss.
    assert plain.train_loss[-1] < 0.5 * plain.val_loss[-1] and plain.gap > 0
    # Augmented batches are harder to memorise: a higher training loss, a smaller gap.
    assert augmented.train_loss[-1] > plain.train_loss[-1]
    assert augmented.gap < plain.gap
    lines = gap_table(curves)
    assert lines[0].startswith("plain") and "gap +" in lines[0]


def test_dropout_variant_and_empty_gap():
    assert SmallCNN(0.5).drop.p == 0.5
    from tui_nn.lessons.overfit import OverfitCurve
    assert math.isnan(OverfitCurve("plain").gap)
