"""Training of the motion network: end-point error plus a multi-scale hinge GAN with
feature matching, as the original trains it (``configs/config.yaml`` of 3D Cinemagraphy).

The generator is :class:`~cinemagraph.models.motion_net.MotionNet` in train mode; the
discriminator (:mod:`.gan`) judges ``[photo, motion]`` pairs. Each step: one discriminator
update on the ground truth against the detached prediction, then one generator update on
``epe * EPE + gan * hinge + feature_matching * FM``.

A run directory holds ``checkpoints/step_NNNNNNN.pt`` (generator under ``netG`` as the
official file has it, so ``create("motion_net", checkpoint=...)`` and the render's
``--weights-dir`` take it; plus the discriminator, optimisers, schedulers, step and config),
``metrics.csv`` (losses per logged step) and ``samples/step_NNNNNNN.png`` (photo, ground
truth, prediction, hints). Checkpoints are read back with ``weights_only=True``.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch

from ..errors import UserError
from ..models.motion_net import MotionNet
from .gan import (MultiscaleDiscriminator, end_point_error, feature_matching_loss, hinge_d_loss,
                  hinge_g_loss)
from .loop import Trainer

log = logging.getLogger("cinemagraph.train")


def build_motion_dataset(data):
    """Return the dataset a ``MotionDataConfig`` describes."""
    from .motion_data import EulerianVideos, SyntheticMotion

    if data.size % 256:
        raise UserError(f"motion.data.size={data.size}: the motion network needs a multiple "
                        "of 256")
    if data.source == "eulerian":
        if not data.root:
            raise UserError("motion.data.root is not set: give the folder of the Eulerian data "
                            "(motion.data.root=/path/to/eulerian_data)")
        return EulerianVideos(data.root, data.split, data.size, data.max_hints,
                              data.hint_dropout, data.seed)
    if data.source == "synthetic":
        split = "test" if data.split in ("validation", "test") else "train"
        return SyntheticMotion(data.scenes, split, data.size, tuple(data.scene_size),
                               data.max_hints, data.hint_dropout, data.seed)
    raise UserError(f"motion.data.source='{data.source}': use synthetic or eulerian")


class MotionTrainer(Trainer):
    """See the module docstring. ``cfg``: a composed ``TrainConfig``; ``out``: the run dir."""

    name = "motion training"

    def __init__(self, cfg, out: Path, device: torch.device):
        super().__init__(cfg, out, device)
        torch.manual_seed(cfg.trainer.seed + self.rank)
        m = cfg.motion
        self.G = MotionNet()
        if m.model.init:
            from ..models.zoo import create

            self.G.load_state_dict(create("motion_net", checkpoint=m.model.init).state_dict())
        self.G.to(device).train()
        self.D = MultiscaleDiscriminator(5, m.model.ndf, m.model.n_layers_d, m.model.num_d)
        self.D.to(device).train()
        if self.world > 1:
            from torch.nn.parallel import DistributedDataParallel as DDP

            self.G, self.D = DDP(self.G), DDP(self.D)
        self.make_optimizers(self.G.parameters(), self.D.parameters())
        self.dataset = build_motion_dataset(m.data)
        if cfg.trainer.resume:
            self.resume()

    def modules(self) -> dict:
        return {"netG": self.G, "netD": self.D, "optimizer_g": self.opt_g,
                "optimizer_d": self.opt_d, "scheduler_g": self.sched_g, "scheduler_d": self.sched_d}

    def train_step(self, batch: dict) -> dict[str, float]:
        w = self.cfg.motion.loss
        image, mask, hint, motion = (batch[k].to(self.device) for k in ("image", "mask", "hint",
                                                                         "motion"))
        pred = self.G(image, mask, hint)
        real_in = torch.cat([image, motion], 1)

        self.opt_d.zero_grad(set_to_none=True)
        d_loss = hinge_d_loss(self.D(real_in), self.D(torch.cat([image, pred.detach()], 1)))
        d_loss.backward()
        self.opt_d.step()

        self.opt_g.zero_grad(set_to_none=True)
        with torch.no_grad():
            real = self.D(real_in)
        fake = self.D(torch.cat([image, pred], 1))
        epe = end_point_error(pred, motion)
        gan = hinge_g_loss(fake)
        fm = feature_matching_loss(real, fake)
        g_loss = w.epe * epe + w.gan * gan + w.feature_matching * fm
        g_loss.backward()
        self.opt_g.step()
        self.sched_g.step()
        self.sched_d.step()
        self._last = (image, mask, hint, motion, pred.detach())
        return {"g_loss": g_loss.item(), "epe": epe.item(), "g_gan": gan.item(),
                "feature_matching": fm.item(), "d_loss": d_loss.item(),
                "lr": self.sched_g.get_last_lr()[0]}

    def save_sample(self) -> Path:
        from ..media import save_image
        from ..visualize import flow_picture

        image, mask, hint, motion, pred = (x[:1].detach().cpu() for x in self._last)
        photo = (image + 1) / 2
        moving = mask > 0.5
        row = [np.asarray((photo[0].permute(1, 2, 0).clamp(0, 1).numpy() * 255 + 0.5),
                          dtype=np.uint8),
               flow_picture(photo, motion, moving), flow_picture(photo, pred, moving),
               flow_picture(photo, hint, moving)]
        path = self.out / "samples" / f"step_{self.step:07d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        save_image(path, np.concatenate(row, axis=1))
        return path

    def run(self) -> None:
        super().run(self.dataset)
