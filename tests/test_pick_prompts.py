"""Track Object's canvas values on the server side: the drawn box and the picked frame size."""

import pytest

from drive_ops.masks.prompts import check_picked_size, parse_boxes, parse_frame_size


def test_frame_size_reads_width_by_height():
    assert parse_frame_size("512x288") == (512, 288)
    assert parse_frame_size(" 64 X 48 ") == (64, 48)
    assert parse_frame_size("") is None and parse_frame_size(None) is None
    for bad in ("512", "0x10", "axb", "1x2x3"):
        with pytest.raises(ValueError, match="WIDTHxHEIGHT"):
            parse_frame_size(bad)


def test_points_picked_on_other_frames_are_refused_with_the_fix():
    check_picked_size("", 64, 48)
    check_picked_size("64x48", 64, 48)
    with pytest.raises(ValueError) as err:
        check_picked_size("512x512", 256, 256)
    text = str(err.value)
    assert "512x512" in text and "256x256" in text and "canvas" in text and "picked_frame_size" in text


def test_canvas_box_is_corners_in_the_frame():
    assert parse_boxes("[100, 120, 360, 420]", (512, 512)) == [(100.0, 120.0, 360.0, 420.0)]
    assert parse_boxes("", (512, 512)) == []
    with pytest.raises(ValueError, match="outside the 256x256"):
        parse_boxes("[100, 120, 360, 420]", (256, 256))
