"""Retired training settings are refused in one line that names what to use instead."""

import subprocess
import sys

import pytest

from cinemagraph.train.__main__ import RETIRED, retired_setting


@pytest.mark.parametrize("key", sorted(RETIRED))
def test_each_retired_setting_names_what_replaced_it(key):
    message = retired_setting(["experiment=spacetime_small", f"{key}=1"])
    assert message.startswith(f"{key} no longer exists: ") and "\n" not in message
    assert retired_setting([f"+{key}=1"]) == message
    assert retired_setting(["experiment=spacetime_small", "spacetime.model.band_px=9"]) is None


def test_the_training_command_refuses_a_retired_setting_in_one_line(tmp_path):
    done = subprocess.run([sys.executable, "-m", "cinemagraph.train", "experiment=spacetime_small",
                           "spacetime.model.correction=band"], capture_output=True, text=True,
                          cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "spacetime.model.band_px" in done.stderr
