"""Tiny synthetic scene sets for the evaluation tests."""

from cinemagraph.data.synthetic import main as synthetic_main


def tiny_scenes(root, split: str):
    """Two 48x32 scenes of four frames on the ``side`` path, written into ``root``."""
    assert synthetic_main(["--out", str(root), "--scenes", "2", "--seed", "3", "--split", split,
                           "--size", "48x32", "--frames", "4", "--paths", "side",
                           "--supersample", "1", "--device", "cpu"]) == 0
    return root
