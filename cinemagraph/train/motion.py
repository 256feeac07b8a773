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

import csv
import logging
import time
from pathlib import Path

import numpy as np
import torch
from omegaconf import OmegaConf

from ..errors import UserError
from ..models.motion_net import MotionNet
from .gan import (MultiscaleDiscriminator, end_point_error, feature_matching_loss, hinge_d_loss,
                  hinge_g_loss)

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


class MotionTrainer:
    """See the module docstring. ``cfg``: a composed ``TrainConfig``; ``out``: the run dir."""

    def __init__(self, cfg, out: Path, device: torch.device):
        self.cfg, self.out, self.device = cfg, Path(out), device
        torch.manual_seed(cfg.trainer.seed)
        m = cfg.motion
        self.G = MotionNet()
        if m.model.init:
            from ..models.zoo import create

            self.G.load_state_dict(create("motion_net", checkpoint=m.model.init).state_dict())
        self.G.to(device).train()
        self.D = MultiscaleDiscriminator(5, m.model.ndf, m.model.n_layers_d, m.model.num_d)
        self.D.to(device).train()
        o = cfg.optim
        self.opt_g = torch.optim.Adam(self.G.parameters(), o.lr, betas=(o.beta1, o.beta2))
        self.opt_d = torch.optim.Adam(self.D.parameters(), o.lr_d, betas=(o.beta1, o.beta2))
        self.sched_g = torch.optim.lr_scheduler.StepLR(self.opt_g, o.decay_steps, o.decay)
        self.sched_d = torch.optim.lr_scheduler.StepLR(self.opt_d, o.decay_steps, o.decay)
        self.dataset = build_motion_dataset(m.data)
        self.step = 0
        (self.out / "checkpoints").mkdir(parents=True, exist_ok=True)
        if cfg.trainer.resume:
            self.resume()

    # --- checkpoints ------------------------------------------------------------------

    def checkpoints(self) -> list[Path]:
        return sorted((self.out / "checkpoints").glob("step_*.pt"))

    def save(self) -> Path:
        path = self.out / "checkpoints" / f"step_{self.step:07d}.pt"
        state = {"netG": self.G.state_dict(), "netD": self.D.state_dict(),
                 "optimizer_g": self.opt_g.state_dict(), "optimizer_d": self.opt_d.state_dict(),
                 "scheduler_g": self.sched_g.state_dict(), "scheduler_d": self.sched_d.state_dict(),
                 "step": self.step, "config": OmegaConf.to_yaml(self.cfg)}
        tmp = path.with_name(path.name + ".tmp")
        torch.save(state, tmp)
        tmp.replace(path)
        for old in self.checkpoints()[:-max(1, self.cfg.trainer.keep_last)]:
            old.unlink()
        return path

    def resume(self) -> None:
        found = self.checkpoints()
        if not found:
            return
        state = torch.load(found[-1], map_location=self.device, weights_only=True)
        self.G.load_state_dict(state["netG"])
        self.D.load_state_dict(state["netD"])
        self.opt_g.load_state_dict(state["optimizer_g"])
        self.opt_d.load_state_dict(state["optimizer_d"])
        self.sched_g.load_state_dict(state["scheduler_g"])
        self.sched_d.load_state_dict(state["scheduler_d"])
        self.step = int(state["step"])
        log.info("resumed from '%s' at step %d", found[-1], self.step)

    # --- data -------------------------------------------------------------------------

    def batches(self):
        """Yield batches forever, epoch after epoch, in an order fixed by the seed."""
        t = self.cfg.trainer
        per_epoch = max(1, len(self.dataset) // t.batch_size)
        epoch, skip = divmod(self.step, per_epoch)
        while True:
            self.dataset.epoch = epoch
            order = torch.Generator().manual_seed(int(np.random.SeedSequence(
                [t.seed, epoch]).generate_state(1)[0]))
            loader = torch.utils.data.DataLoader(
                self.dataset, batch_size=t.batch_size, drop_last=True,
                sampler=torch.utils.data.RandomSampler(self.dataset, generator=order),
                num_workers=t.num_workers)
            for i, batch in enumerate(loader):
                if i >= skip:
                    yield batch
            epoch, skip = epoch + 1, 0

    # --- one step ---------------------------------------------------------------------

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
        self.step += 1
        self._last = (image, mask, hint, motion, pred.detach())
        return {"g_loss": g_loss.item(), "epe": epe.item(), "g_gan": gan.item(),
                "feature_matching": fm.item(), "d_loss": d_loss.item()}

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
        t = self.cfg.trainer
        metrics_path = self.out / "metrics.csv"
        new = not metrics_path.exists()
        log.info("motion training: %d item(s) per epoch from %s, steps %d -> %d on %s",
                 len(self.dataset), type(self.dataset).__name__, self.step, t.steps, self.device)
        if self.step >= t.steps:
            log.info("nothing to do: already at step %d", self.step)
            return
        from tqdm import tqdm

        with open(metrics_path, "a", newline="") as f:
            writer = None
            start = time.perf_counter()
            bar = tqdm(total=t.steps, initial=self.step, desc="motion training", unit="step",
                       disable=None)
            for batch in self.batches():
                losses = self.train_step(batch)
                bar.update(1)
                if self.step % t.log_every == 0 or self.step == t.steps:
                    row = {"step": self.step, **losses, "lr": self.sched_g.get_last_lr()[0],
                           "seconds": round(time.perf_counter() - start, 3)}
                    if writer is None:
                        writer = csv.DictWriter(f, fieldnames=list(row))
                        if new:
                            writer.writeheader()
                    writer.writerow(row)
                    f.flush()
                    bar.set_postfix(epe=f"{losses['epe']:.3f}", d=f"{losses['d_loss']:.3f}")
                if self.step % t.sample_every == 0 or self.step == t.steps:
                    self.save_sample()
                if self.step % t.checkpoint_every == 0 or self.step == t.steps:
                    self.save()
                if self.step >= t.steps:
                    break
            bar.close()
        log.info("motion training: reached step %d; checkpoints in '%s'", self.step,
                 self.out / "checkpoints")
