"""SAMURAI's Kalman filter against the reference run, and its box helpers."""

from __future__ import annotations

import json

import pytest
import torch

from drive_ops.masks.kalman_box import (STD_WEIGHT_POSITION, STD_WEIGHT_VELOCITY, box_iou, kalman_initiate,
                                  kalman_predict, kalman_update, mask_boxes_xyxy, xyah_to_xyxy, xyxy_to_xyah)


def test_matches_samurai_oracle(shared_data):
    oracle = json.loads((shared_data / "samurai_kalman_oracle.json").read_text())
    assert oracle["std_weight_position"] == STD_WEIGHT_POSITION
    assert oracle["std_weight_velocity"] == STD_WEIGHT_VELOCITY
    state = None
    for step in oracle["steps"]:
        if step["op"] == "initiate":
            state = kalman_initiate(step["measurement"])
        elif step["op"] == "predict":
            state = kalman_predict(state)
        else:
            state = kalman_update(state, step["measurement"])
        mean = torch.tensor(step["mean"], dtype=torch.float64)
        cov = torch.tensor(step["cov"], dtype=torch.float64)
        torch.testing.assert_close(state.mean, mean, rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(state.cov, cov, rtol=1e-10, atol=1e-12)


def test_constant_velocity_prediction():
    state = kalman_initiate([10.0, 20.0, 0.5, 40.0])
    for t in range(1, 12):
        state = kalman_predict(state)
        state = kalman_update(state, [10.0 + 3 * t, 20.0 - 2 * t, 0.5, 40.0])
    pred = kalman_predict(state)
    # after a dozen steps at constant speed the filter has learnt the velocity
    assert abs(float(pred.mean[0]) - (10 + 3 * 12)) < 0.5
    assert abs(float(pred.mean[1]) - (20 - 2 * 12)) < 0.5
    assert float(pred.mean[4]) == pytest.approx(3.0, abs=0.3)


def test_box_conversions_and_iou():
    xyah = xyxy_to_xyah([10, 20, 50, 100])
    assert xyah.tolist() == [30.0, 60.0, 0.5, 80.0]
    assert xyah_to_xyxy(xyah).tolist() == [10.0, 20.0, 50.0, 100.0]
    assert xyxy_to_xyah([5, 5, 9, 5])[3] == 1.0
    iou = box_iou(torch.tensor([0.0, 0, 10, 10]), torch.tensor([[0.0, 0, 10, 10], [5, 0, 15, 10], [0, 0, 0, 0]]))
    torch.testing.assert_close(iou, torch.tensor([1.0, 1 / 3, 0.0], dtype=torch.float64))


def test_mask_boxes():
    m = torch.zeros(2, 8, 10)
    m[0, 2:5, 3:7] = 1
    assert mask_boxes_xyxy(m).tolist() == [[3.0, 2.0, 6.0, 4.0], [0.0, 0.0, 0.0, 0.0]]
