"""Training of the feature network and image decoder (``task=spacetime``).

Each sample is one synthetic scene (:class:`~cinemagraph.data.SyntheticScenes`, one random
frame ``t`` of an ``N``-frame animation) and one of two kinds, as the original trains:

* ``anim``: the animation from the source camera (identity pose): the forward cloud after
  ``t`` steps and the backward cloud after ``N - t`` steps of the reversed flow, blended at
  ``t / N``, against the ground-truth frame ``t``;
* ``nvs``: the static scene from a camera of a path at its frame ``t``, against the
  ground-truth view.

The scene is layered as the render does (ground-truth depth and motion, the built-in
layering, no gradient), the layers go through the feature network, points are lifted,
splatted (the splatter is differentiable in the features) and decoded: the loss reaches both
networks through the whole render. (The original animates a cloud from a video's first frame
forwards and one from its last frame backwards; from a single photo, as the render runs, both
clouds come from the same photo, and the synthetic ground truth makes every frame a target.)

Losses: L1 on the pixels the ground truth defines, a perceptual loss (LPIPS with VGG-16) where
torchvision's VGG-16 weights are in the torch hub cache (otherwise it is off and the log says
so; nothing replaces it), and a two-scale PatchGAN with hinge loss and feature matching; the
weights are in ``spacetime.loss``. With ``torchrun --nproc_per_node=N`` the render module
and the discriminator run under DistributedDataParallel, each process on its share of every
epoch; rank 0 writes logs, samples and checkpoints.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

from ..errors import UserError
from ..ldi import LDISettings, build_layered_depth_image
from ..models.spacetime import SpaceTimeModel, load_spacetime
from ..motion.field import MotionField
from ..render.pipeline import RenderSettings, splat_cloud
from ..render.pointcloud import lift_layers
from .gan import MultiscaleDiscriminator, feature_matching_loss, hinge_d_loss, hinge_g_loss
from .loop import Trainer

log = logging.getLogger("cinemagraph.train")

VGG_FILE = "vgg16-397923af.pth"


def perceptual_loss_or_reason(device):
    """Return ``(LPIPS-VGG module, None)`` where its weights are present, else ``(None, why)``."""
    path = Path(torch.hub.get_dir()) / "checkpoints" / VGG_FILE
    if not path.is_file():
        return None, (f"perceptual loss off: no VGG-16 weights ({path}); on a machine with "
                      "internet: python -c \"import torchvision; "
                      "torchvision.models.vgg16(weights='DEFAULT')\"")
    try:
        import lpips

        return lpips.LPIPS(net="vgg", verbose=False).to(device).eval(), None
    except Exception as e:  # lpips missing or its weights unreadable
        return None, f"perceptual loss off: LPIPS-VGG could not be built ({type(e).__name__}: {e})"


class SpaceTimeRender(nn.Module):
    """Renders one training sample through the feature network, splatter and decoder (the
    module DistributedDataParallel wraps)."""

    def __init__(self, model: SpaceTimeModel, settings: RenderSettings):
        super().__init__()
        self.model, self.settings = model, settings

    def forward(self, ldi, K, steps: int, pose, view_K, t: int, animate: bool):
        features = self.model.features(ldi)
        cloud = lift_layers(ldi, features, K, steps, self.settings.point_radius)
        size = ldi.size
        if animate:
            fwd = splat_cloud(cloud, cloud.positions(t), pose, view_K, size, self.settings)
            bwd = None
            if t > 0 and cloud.moving.numel():
                bwd = splat_cloud(cloud, cloud.positions(steps - t, backward=True), pose, view_K,
                                  size, self.settings)
            return self.model.decode(fwd, bwd, t / steps)
        fwd = splat_cloud(cloud, cloud.positions(0), pose, view_K, size, self.settings)
        return self.model.decode(fwd, None, 0.0)


def build_spacetime_dataset(data):
    from ..data import SyntheticScenes

    if data.source == "videos":
        from .spacetime_data import VideoAnimations

        if not data.root:
            raise UserError("spacetime.data.root is not set: give the folder of the videos "
                            "(layout in cinemagraph/train/spacetime_data.py)")
        return VideoAnimations(data.root, data.split, tuple(data.size), data.frames, data.seed)
    if data.source != "synthetic":
        raise UserError(f"spacetime.data.source='{data.source}': use synthetic or videos")
    kinds = tuple(k for k in data.kinds if k in ("anim", "nvs"))
    if not kinds:
        raise UserError("spacetime.data.kinds must name anim and/or nvs")
    return SyntheticScenes(data.scenes, data.split, data.seed, tuple(data.size), data.frames,
                           tuple(data.paths), kinds, frames_per_item=1,
                           supersample=data.supersample)


class SpaceTimeTrainer(Trainer):
    name = "spacetime training"

    def __init__(self, cfg, out: Path, device: torch.device):
        super().__init__(cfg, out, device)
        s = cfg.spacetime
        torch.manual_seed(cfg.trainer.seed + self.rank)
        model = load_spacetime(s.model.init) if s.model.init else SpaceTimeModel(s.model.preset)
        if model.preset != s.model.preset:
            raise UserError(f"spacetime.model.init holds the '{model.preset}' preset, not "
                            f"'{s.model.preset}'")
        self.model = model.to(device).train()
        self.render = SpaceTimeRender(self.model, RenderSettings())
        self.D = MultiscaleDiscriminator(3, s.model.ndf, s.model.n_layers_d, s.model.num_d).to(device)
        if self.world > 1:
            from torch.nn.parallel import DistributedDataParallel as DDP

            self.render, self.D = DDP(self.render), DDP(self.D)
        self.make_optimizers(self.model.parameters(), self.D.parameters())
        self.perceptual = None
        if s.loss.perceptual > 0:
            self.perceptual, reason = perceptual_loss_or_reason(device)
            if reason:
                log.info("%s", reason)
        self.dataset = build_spacetime_dataset(s.data)
        self.ldi_settings = LDISettings(max_layers=s.data.max_layers)
        logging.getLogger("cinemagraph.ldi").setLevel(logging.WARNING)  # one line per item
        if cfg.trainer.resume:
            self.resume()

    def collate(self, items):
        return items

    def modules(self) -> dict:
        return {"spacetime": self.model, "netD": self.D, "optimizer_g": self.opt_g,
                "optimizer_d": self.opt_d, "scheduler_g": self.sched_g,
                "scheduler_d": self.sched_d}

    def _target(self, item: dict, index: int):
        """Render one item; return (prediction, target, valid) on the device."""
        dev = self.device
        image, depth = item["image"][None].to(dev), item["depth"][None].to(dev)
        mask = item["mask"][None].to(dev)
        motion = MotionField(item["motion"][None].to(dev) * mask, mask.bool())
        steps = self.cfg.spacetime.data.frames
        t = int(item["frame_indices"][0])
        rng = np.random.default_rng([self.cfg.trainer.seed, self.step, index, self.rank])
        kinds = self.dataset.kinds
        kind = kinds[int(rng.integers(len(kinds)))]
        with torch.no_grad():
            ldi = build_layered_depth_image(image, depth, motion, self.ldi_settings)
        K = item["K"].to(dev)
        if kind == "anim":
            pose, view_K = torch.eye(4, device=dev), K
            target, valid = item["anim"]["frames"][0], item["anim"]["valid"][0]
        else:
            paths = [p for p in self.cfg.spacetime.data.paths if p in item]
            path = item[paths[int(rng.integers(len(paths)))]]
            pose, view_K = path["world_to_camera"][t].to(dev), path["K"][t].to(dev)
            target, valid = path["nvs"]["frames"][0], path["nvs"]["valid"][0]
        pred = self.render(ldi, K, steps, pose, view_K, t, kind == "anim")
        return pred, target[None].to(dev), valid[None, None].to(dev).float()

    def train_step(self, batch: list) -> dict[str, float]:
        w = self.cfg.spacetime.loss
        preds, targets, valids = zip(*(self._target(item, i) for i, item in enumerate(batch)))
        pred, target, valid = torch.cat(preds), torch.cat(targets), torch.cat(valids)
        # The discriminator sees the whole frame; undefined ground-truth pixels take the
        # prediction, so they carry no signal either way.
        target_full = valid * target + (1 - valid) * pred.detach()

        self.opt_d.zero_grad(set_to_none=True)
        d_loss = hinge_d_loss(self.D(target_full * 2 - 1), self.D(pred.detach() * 2 - 1))
        d_loss.backward()
        self.opt_d.step()

        self.opt_g.zero_grad(set_to_none=True)
        l1 = (valid * (pred - target).abs()).sum() / (3 * valid.sum()).clamp_min(1.0)
        loss = w.l1 * l1
        out = {"l1": l1.item()}
        if self.perceptual is not None:
            lp = self.perceptual(pred * 2 - 1, target_full * 2 - 1).mean()
            loss = loss + w.perceptual * lp
            out["perceptual"] = lp.item()
        if w.gan > 0 or w.feature_matching > 0:
            with torch.no_grad():
                real = self.D(target_full * 2 - 1)
            fake = self.D(pred * 2 - 1)
            gan, fm = hinge_g_loss(fake), feature_matching_loss(real, fake)
            loss = loss + w.gan * gan + w.feature_matching * fm
            out.update(g_gan=gan.item(), feature_matching=fm.item())
        loss.backward()
        self.opt_g.step()
        self.sched_g.step()
        self.sched_d.step()
        with torch.no_grad():
            mse = (valid * (pred - target) ** 2).sum() / (3 * valid.sum()).clamp_min(1.0)
        self._last = (pred.detach(), target, valid)
        return {"loss": loss.item(), **out, "psnr": (-10 * torch.log10(mse.clamp_min(1e-10))).item(),
                "d_loss": d_loss.item(), "lr": self.sched_g.get_last_lr()[0]}

    def save_sample(self) -> Path:
        from ..media import save_image

        pred, target, valid = (x[:1].cpu() for x in self._last)
        row = torch.cat([pred[0], target[0] * valid[0]], dim=2).permute(1, 2, 0).clamp(0, 1)
        path = self.out / "samples" / f"step_{self.step:07d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        save_image(path, (row.numpy() * 255 + 0.5).astype(np.uint8))
        return path

    def save(self):
        path = super().save()
        if path is not None:
            from ..models.spacetime import save_spacetime

            save_spacetime(self.model, path.with_suffix(".safetensors"), half=False,
                           metadata={"step": self.step})
            for old in sorted(path.parent.glob("step_*.safetensors")):
                if not old.with_suffix(".pt").exists():
                    old.unlink()
        return path

    def run(self) -> None:
        super().run(self.dataset)
