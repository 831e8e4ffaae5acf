"""The loss-curve image: an IMAGE tensor, and the moving average it draws."""

from __future__ import annotations

import pytest

from drive_ops.evaluate.loss_plot import moving_average, plot_loss_curve


def test_moving_average_is_trailing():
    assert moving_average([1.0, 3.0, 5.0, 7.0], 2).tolist() == [1.0, 2.0, 4.0, 6.0]


def test_plot_is_an_image_tensor():
    img = plot_loss_curve([1.0 / (i + 1) for i in range(50)], "loss", width=320, height=200)
    assert img.shape == (1, 200, 320, 3) and 0.0 <= float(img.min()) and float(img.max()) <= 1.0
    assert float(img.std()) > 0.01
    with pytest.raises(ValueError):
        plot_loss_curve([], "empty")
