"""Motion-network training: data in the original layout, hint sampling, the loop, resume."""

import csv
import pickle
import subprocess
import sys

import numpy as np
import pytest
import torch
from hydra.errors import ConfigCompositionException

from cinemagraph.errors import UserError
from cinemagraph.train.motion import MotionTrainer
from cinemagraph.train.motion_data import (EulerianVideos, _NumpyOnly, read_motion_file,
                                           sample_hints, write_motion_file)

from .configs import config, experiments

EXPERIMENTS = experiments("motion_")


@pytest.fixture(scope="module")
def eulerian(tmp_path_factory):
    """Two tiny videos in the original training set's layout."""
    import imageio.v2 as imageio

    root = tmp_path_factory.mktemp("eulerian_data")
    folder = root / "train"
    folder.mkdir()
    g = np.random.default_rng(0)
    for vid in ("00001_00000", "00002_00000"):
        frames = [(g.random((64, 96, 3)) * 255).astype(np.uint8) for _ in range(3)]
        imageio.mimwrite(folder / f"{vid}.mp4", frames, fps=10, macro_block_size=1)
        motion = np.zeros((1, 2, 64, 96), np.float32)
        motion[0, 0, 30:, :] = 2.0  # the lower part flows right
        write_motion_file(folder / f"{vid}_motion.pth", motion)
    return root


def test_motion_files_are_read_without_running_pickled_code(tmp_path):
    import lz4.frame

    path = tmp_path / "evil_motion.pth"
    path.write_bytes(lz4.frame.compress(pickle.dumps(print)))  # a callable, not an array
    with pytest.raises(UserError, match="refused to load"):
        read_motion_file(path)
    assert issubclass(_NumpyOnly, pickle.Unpickler)
    good = np.arange(12, dtype=np.float32).reshape(1, 2, 2, 3)
    write_motion_file(tmp_path / "a_motion.pth", good)
    assert np.array_equal(read_motion_file(tmp_path / "a_motion.pth"), good[0])


def test_hints_sit_on_the_motion_and_can_be_dropped():
    motion = torch.zeros(2, 64, 64)
    motion[0, :, :32] = 1.0   # left half flows right
    motion[1, :, 32:] = -2.0  # right half flows up
    mask = (motion.norm(dim=0, keepdim=True) > 0).float()
    g = torch.Generator().manual_seed(3)
    hint = sample_hints(motion, mask, g, max_hints=5)
    assert (hint[:, mask[0] == 0] == 0).all()
    # every hint value is a blend of the motion at the hint points
    values = hint[:, mask[0] > 0]
    assert values[0].min() >= 0 and values[0].max() <= 1 + 1e-6
    assert values[1].min() >= -2 - 1e-6 and values[1].max() <= 0
    dropped = sample_hints(motion, mask, torch.Generator().manual_seed(3), dropout=1.0)
    assert (dropped == 0).all()
    again = sample_hints(motion, mask, torch.Generator().manual_seed(3), max_hints=5)
    assert torch.equal(hint, again)


def test_eulerian_items_are_cropped_flipped_and_scaled(eulerian):
    data = EulerianVideos(eulerian, "train", size=256, hint_dropout=0.0, seed=1)
    assert len(data) == 2
    item = data[0]
    assert item["image"].shape == (3, 256, 256) and item["motion"].shape == (2, 256, 256)
    assert -1 <= item["image"].min() and item["image"].max() <= 1
    # 2 px/frame on a 64-pixel square crop is 8 px/frame on the 256 grid, either direction,
    # below the edge of the flowing part (row 30 of 64 -> 120 of 256).
    speeds = item["motion"][0, 124:].abs()
    assert torch.allclose(speeds, torch.tensor(8.0), atol=1e-4)
    assert (item["motion"][:, :116] == 0).all() and (item["mask"][0, :116] == 0).all()
    assert (item["mask"][0, 124:] == 1).all()
    assert torch.equal(data[0]["motion"], item["motion"])  # deterministic per (seed, epoch, index)
    with pytest.raises(UserError, match="no folder"):
        EulerianVideos(eulerian, "validation")


@pytest.mark.parametrize("source", ["eulerian", "synthetic"])
def test_two_steps_on_the_cpu_then_resume(source, eulerian, tmp_path):
    overrides = [f"experiment=motion_{source}", "trainer.steps=2", "trainer.batch_size=1",
                 "trainer.device=cpu", "trainer.log_every=1", "motion.data.size=256"]
    if source == "eulerian":
        overrides.append(f"motion.data.root={eulerian}")
    else:
        overrides += ["motion.data.scenes=4", "motion.data.scene_size=[96,128]"]
    cfg = config(overrides)
    trainer = MotionTrainer(cfg, tmp_path, torch.device("cpu"))
    before = {k: v.clone() for k, v in trainer.G.state_dict().items()}
    trainer.run()
    assert trainer.step == 2
    changed = [k for k, v in trainer.G.state_dict().items() if not torch.equal(v, before[k])]
    assert any("weight_orig" in k for k in changed)  # the generator learned something
    rows = list(csv.DictReader(open(tmp_path / "metrics.csv")))
    assert [int(r["step"]) for r in rows] == [1, 2]
    assert all(np.isfinite(float(r[k])) for r in rows for k in ("epe", "d_loss", "g_gan"))
    checkpoint = tmp_path / "checkpoints" / "step_0000002.pt"
    assert (tmp_path / "samples" / "step_0000002.png").exists()
    # Our checkpoint is an official-format file for the model zoo and the render.
    from cinemagraph.models import create

    loaded = create("motion_net", checkpoint=checkpoint)
    assert torch.equal(loaded.state_dict()["motion_predictor.conv1.weight_orig"],
                       trainer.G.state_dict()["motion_predictor.conv1.weight_orig"])
    # Resume: a new trainer in the same directory continues to the new end.
    cfg.trainer.steps = 3
    again = MotionTrainer(cfg, tmp_path, torch.device("cpu"))
    assert again.step == 2
    assert torch.equal(again.opt_g.state_dict()["state"][0]["exp_avg"],
                       trainer.opt_g.state_dict()["state"][0]["exp_avg"])
    again.run()
    assert again.step == 3
    assert [int(r["step"]) for r in csv.DictReader(open(tmp_path / "metrics.csv"))] == [1, 2, 3]


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_every_experiment_composes(experiment):
    cfg = config([f"experiment={experiment}"])
    assert cfg.task == "motion" and cfg.trainer.steps > 0


def test_a_typo_fails_at_composition():
    with pytest.raises(ConfigCompositionException):
        config(["experiment=motion_synthetic", "trainer.stepz=3"])
    with pytest.raises(ConfigCompositionException):
        config(["experiment=motion_synthetic", "motion.data.sizee=256"])


def test_the_command_runs_and_sweeps(tmp_path):
    """The real entry point: a two-value sweep with Hydra's basic launcher."""
    cmd = [sys.executable, "-m", "cinemagraph.train", "-m", "experiment=motion_synthetic",
           "trainer.steps=1", "trainer.batch_size=1", "trainer.device=cpu",
           "motion.data.scenes=2", "motion.data.scene_size=[96,128]",
           "train.lr=1e-4,3e-4", f"hydra.sweep.dir={tmp_path}/sweep"]
    done = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    runs = sorted((tmp_path / "sweep").glob("*/checkpoints/step_0000001.pt"))
    assert len(runs) == 2
    bad = subprocess.run([sys.executable, "-m", "cinemagraph.train", "experiment=motion_eulerian",
                          "trainer.device=cpu", f"hydra.run.dir={tmp_path}/bad"], cwd=tmp_path,
                         capture_output=True, text=True, timeout=600)
    assert bad.returncode == 2 and "motion.data.root is not set" in bad.stderr
    assert "Traceback" not in bad.stderr


class Counting(torch.utils.data.Dataset):
    """Ten items, each its index; remembers which it was asked to make."""

    def __init__(self):
        self.made = []

    def __len__(self):
        return 10

    def __getitem__(self, i):
        self.made.append(i)
        return torch.tensor([i])


def test_a_resumed_epoch_continues_with_the_same_batches_without_making_skipped_items(tmp_path):
    from cinemagraph.train.loop import Trainer

    cfg = config(["experiment=motion_synthetic", "trainer.batch_size=2", "trainer.device=cpu",
                  "trainer.num_workers=0"])
    fresh = Trainer(cfg, tmp_path / "a", torch.device("cpu"))
    stream = fresh.batches(Counting())
    first_run = [next(stream).tolist() for _ in range(7)]  # 5 batches an epoch: into epoch 2
    resumed = Trainer(cfg, tmp_path / "b", torch.device("cpu"))
    resumed.step = 3
    data = Counting()
    stream = resumed.batches(data)
    assert [next(stream).tolist() for _ in range(4)] == first_run[3:]
    assert len(data.made) == 8  # 2 batches of epoch 0 and 2 of epoch 1; none skipped made


@pytest.mark.parametrize("pin", [True, False])
def test_the_loader_pins_batches_for_a_gpu_only_when_asked(pin, tmp_path, monkeypatch):
    from cinemagraph.train.loop import Trainer

    seen = []

    class Loader(list):
        def __init__(self, data, **kwargs):
            seen.append(kwargs["pin_memory"])
            super().__init__([torch.tensor([0, 1])])

    monkeypatch.setattr(torch.utils.data, "DataLoader", Loader)
    cfg = config(["experiment=motion_synthetic", "trainer.batch_size=2", "trainer.device=cpu",
                  "trainer.num_workers=0", f"trainer.pin_memory={str(pin).lower()}"])
    on_gpu = Trainer(cfg, tmp_path / "g", torch.device("cpu"))
    on_gpu.device = torch.device("cuda")  # only the loader's arguments are looked at
    next(on_gpu.new_batches(Counting(), 0))
    next(Trainer(cfg, tmp_path / "c", torch.device("cpu")).new_batches(Counting(), 0))
    assert seen == [pin, False]  # never pinned for the CPU
