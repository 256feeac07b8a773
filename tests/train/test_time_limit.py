"""``trainer.time_limit``: a run stops after that many seconds of training with a checkpoint
of the step it reached, as at ``trainer.steps``, and running again resumes from it."""

import time

import pytest
import torch

from cinemagraph.errors import UserError
from cinemagraph.train.loop import Trainer

from .configs import config


class Items(torch.utils.data.Dataset):
    def __len__(self):
        return 8

    def __getitem__(self, i):
        return torch.tensor([float(i)])


class Slow(Trainer):
    """A trainer of one weight whose every step takes at least 20 ms."""

    def __init__(self, cfg, out):
        super().__init__(cfg, out, torch.device("cpu"))
        self.weight = torch.nn.Linear(1, 1)

    def modules(self):
        return {"weight": self.weight}

    def train_step(self, batch):
        time.sleep(0.02)
        with torch.no_grad():
            self.weight.bias += 1.0  # counts the steps
        return {"loss": 0.0}

    def save_sample(self):
        return self.out


def settings(*extra):
    return config(["experiment=motion_synthetic", "trainer.device=cpu", "trainer.num_workers=0",
                   "trainer.batch_size=2", "trainer.steps=100000", "trainer.checkpoint_every=100000",
                   "trainer.sample_every=100000", *extra])


def test_a_run_stops_at_its_time_limit_with_a_checkpoint_that_the_next_run_resumes(tmp_path):
    first = Slow(settings("trainer.time_limit=0.3"), tmp_path)
    bias = first.weight.bias.item()
    first.run(Items())
    reached = first.step
    assert 5 <= reached < 100  # 0.3 s of 20-ms steps, far short of trainer.steps
    saved = first.checkpoints()
    assert [p.name for p in saved] == [f"step_{reached:07d}.pt"]
    again = Slow(settings(f"trainer.steps={reached + 2}"), tmp_path)
    again.resume()
    assert again.step == reached
    assert again.weight.bias.item() == pytest.approx(bias + reached)
    again.run(Items())
    assert again.step == reached + 2 and again.weight.bias.item() == pytest.approx(bias + reached + 2)


def test_without_a_time_limit_the_run_goes_to_its_steps(tmp_path):
    run = Slow(settings("trainer.steps=3"), tmp_path)
    run.run(Items())
    assert run.step == 3


def test_a_negative_time_limit_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="trainer.time_limit=-1"):
        Slow(settings("trainer.time_limit=-1"), tmp_path).run(Items())
