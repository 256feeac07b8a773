"""The contact sheet's fixed-region measure (benchmarks/decoder_contact_sheet.py --region)."""

import argparse
import importlib.util
from pathlib import Path

import numpy as np
import pytest

_PATH = Path(__file__).resolve().parents[1] / "benchmarks" / "decoder_contact_sheet.py"


@pytest.fixture(scope="module")
def sheet():
    spec = importlib.util.spec_from_file_location("decoder_contact_sheet", _PATH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_region_is_parsed_and_bad_ones_are_refused(sheet):
    assert sheet.parse_region("astronaut_moon=170,175,195,200") == ("astronaut_moon", (170, 175, 195, 200))
    for bad in ("170,175,195,200", "a=1,2,3", "a=5,0,5,4", "a=0,4,3,1", "a=x,0,1,1", "=0,0,1,1"):
        with pytest.raises(argparse.ArgumentTypeError, match="NAME=X0,Y0,X1,Y1"):
            sheet.parse_region(bad)


def test_the_region_change_is_the_signed_mean_over_the_box_only(sheet):
    before = np.zeros((10, 20, 3), np.uint8)
    after = before.copy()
    after[2:4, 5:9] = (10, 20, 200)   # inside the box x 5..9, y 2..4
    after[8, 15] = 255                # outside
    np.testing.assert_allclose(sheet.region_change(before, after, (5, 2, 9, 4)), [10, 20, 200])
    np.testing.assert_allclose(sheet.region_change(after, before, (5, 2, 9, 6)), [-5, -10, -100])
    with pytest.raises(SystemExit, match="does not fit"):
        sheet.region_change(before, after, (0, 0, 21, 4))
