"""Training of the feature network and image decoder (``task=spacetime``).

The samples (``anim``, ``nvs``, ``both``; the original's two-frame ``anim`` samples by
default) are made by the data-loading workers, :mod:`.spacetime_samples`: scene, ground
truth, layers as the render makes them, point cloud and the geometry of every splat. Here the
layers go through the feature network, its features are splatted by those plans (splatting
is linear in the features; the point positions carry no gradient, as in the render) and the
frames of a batch are decoded together: the loss reaches both networks through the whole
render.

Losses: L1 and squared error on the pixels the ground truth defines, a perceptual loss (LPIPS with VGG-16) where
torchvision's VGG-16 weights are in the torch hub cache (otherwise it is off and the log says
so; nothing replaces it), and a two-scale PatchGAN with hinge loss and feature matching; the
weights are in ``spacetime.loss``. With ``torchrun --nproc_per_node=N`` the render module
and the discriminator run under DistributedDataParallel, each process on its share of every
epoch; rank 0 writes logs, samples and checkpoints.
"""

from __future__ import annotations

import copy
from dataclasses import replace
import logging
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

from torch import Tensor

from ..errors import UserError
from ..render.decode import SplattedFrame
from ..spacetime import SpaceTimeModel, load_spacetime
from ..render.pointcloud import point_features
from ..render.splat import apply_splat_plan
from .gan import MultiscaleDiscriminator, feature_matching_loss, hinge_d_loss, hinge_g_loss
from .loop import Trainer
from .spacetime_samples import SpaceTimeSamples, to_device

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

        # A fixed metric: no gradients into its own weights (its linear heads would take them).
        return lpips.LPIPS(net="vgg", verbose=False).to(device).eval().requires_grad_(False), None
    except Exception as e:  # lpips missing or its weights unreadable
        return None, f"perceptual loss off: LPIPS-VGG could not be built ({type(e).__name__}: {e})"


class SpaceTimeRender(nn.Module):
    """Renders a batch of training items through the feature network, the splat plans and
    the decoder (the module DistributedDataParallel wraps); see
    :mod:`.spacetime_samples`."""

    def __init__(self, model: SpaceTimeModel):
        super().__init__()
        self.model = model

    def forward(self, items: list[dict]) -> Tensor:
        forwards, backwards, times = [], [], []
        for item in items:
            points = point_features(item["ldi"], self.model.features(item["ldi"]),
                                    item["points"])
            end_points = points
            if item["end_ldi"] is not None:
                end_points = point_features(item["end_ldi"], self.model.features(item["end_ldi"]),
                                            item["end_points"])
            for sample in item["samples"]:
                forwards.append(_splatted(sample["forward"], points))
                backwards.append(None if sample["backward"] is None
                                 else _splatted(sample["backward"], end_points))
                times.append(sample["time"])
        return self.model.decode_batch(forwards, backwards, times)


def _splatted(planned, points: Tensor) -> SplattedFrame:
    plan, depth, displacement, moving = planned
    return SplattedFrame(apply_splat_plan(plan, points).features, plan.alpha, depth,
                         displacement, moving)


class SpaceTimeTrainer(Trainer):
    name = "spacetime training"

    def __init__(self, cfg, out: Path, device: torch.device):
        super().__init__(cfg, out, device)
        s = cfg.spacetime
        torch.manual_seed(cfg.trainer.seed + self.rank)
        model = load_spacetime(s.model.init) if s.model.init else SpaceTimeModel(s.model.preset)
        if not isinstance(model, SpaceTimeModel):
            raise UserError(f"spacetime.model.init '{s.model.init}' is an output ensemble: "
                            "train on from one of its members' files")
        if model.preset != s.model.preset:
            raise UserError(f"spacetime.model.init holds the '{model.preset}' preset, not "
                            f"'{s.model.preset}'")
        if model.residual:
            # The config sets the rules it names; a start file keeps its other constants.
            try:
                rules = replace(model.rules, band_px=s.model.band_px, crack_px=s.model.crack_px,
                                fluid_px=s.model.fluid_px, fluid_rule=s.model.fluid_rule,
                                fluid_border=s.model.fluid_border)
            except ValueError as e:
                raise UserError(f"spacetime.model: {e}") from None
            if model.rules != rules:
                log.info("the decoder's rules: %s -> %s", model.rules.describe(),
                         rules.describe())
                model.rules = rules
        self.model = model.to(device).train()
        self.render = SpaceTimeRender(self.model)
        if not 0.0 <= s.model.ema < 1.0:
            raise UserError(f"spacetime.model.ema={s.model.ema}: give a decay in [0, 1) "
                            "(0: no moving average; 0.999 is usual)")
        #: The moving average of the weights (None: off), what the weight files hold.
        self.ema = (copy.deepcopy(self.model).eval().requires_grad_(False)
                    if s.model.ema > 0 else None)
        self.D = MultiscaleDiscriminator(3, s.model.ndf, s.model.n_layers_d, s.model.num_d).to(device)
        if self.world > 1:
            from torch.nn.parallel import DistributedDataParallel as DDP

            self.render, self.D = DDP(self.render), DDP(self.D)
        self.make_optimizers([{"params": list(model.parameters())}], self.D.parameters())
        self.perceptual = None
        if s.loss.perceptual > 0:
            self.perceptual, reason = perceptual_loss_or_reason(device)
            if reason:
                log.info("%s", reason)
        # A batch is trainer.batch_size samples: items (scenes) of per_scene samples each.
        per_scene = max(1, min(s.data.per_scene, cfg.trainer.batch_size))
        self.dataset = SpaceTimeSamples(s.data, per_scene)
        self.loader_batch_size = max(1, cfg.trainer.batch_size // per_scene)
        for name in ("cinemagraph.ldi", "cinemagraph.pipeline"):  # lines per item
            logging.getLogger(name).setLevel(logging.WARNING)
        if cfg.trainer.resume:
            self.resume()

    def collate(self, items):
        return items

    def modules(self) -> dict:
        out = {"spacetime": self.model, "netD": self.D, "optimizer_g": self.opt_g,
               "optimizer_d": self.opt_d, "scheduler_g": self.sched_g,
               "scheduler_d": self.sched_d}
        return out if self.ema is None else {**out, "ema": self.ema}

    @torch.no_grad()
    def update_ema(self) -> None:
        """Move the average towards the weights: ``ema = decay ema + (1 - decay) weights``
        (buffers, if any, copied)."""
        if self.ema is None:
            return
        # One fused update over every parameter (torch.optim.swa_utils does the same).
        torch._foreach_lerp_(list(self.ema.parameters()), list(self.model.parameters()),
                             1.0 - self.cfg.spacetime.model.ema)
        for mean, buffer in zip(self.ema.buffers(), self.model.buffers()):
            mean.copy_(buffer)

    def train_step(self, batch: list) -> dict[str, float]:
        w = self.cfg.spacetime.loss
        batch = [to_device(item, self.device) for item in batch]
        pred = self.render(batch)
        samples = [sample for item in batch for sample in item["samples"]]
        target = torch.stack([sample["target"] for sample in samples])
        valid = torch.stack([sample["valid"] for sample in samples])[:, None].float()
        # The discriminator sees the whole frame; undefined ground-truth pixels take the
        # prediction, so they carry no signal either way.
        target_full = valid * target + (1 - valid) * pred.detach()

        adversarial = w.gan > 0 or w.feature_matching > 0
        if adversarial:
            self.opt_d.zero_grad(set_to_none=True)
            d_loss = hinge_d_loss(self.D(target_full * 2 - 1), self.D(pred.detach() * 2 - 1))
            d_loss.backward()
            self.opt_d.step()

        self.opt_g.zero_grad(set_to_none=True)
        defined = 3 * valid.sum((1, 2, 3))  # per sample
        squared = (valid * (pred - target) ** 2).sum((1, 2, 3))
        count = defined.sum().clamp_min(1.0)
        l1 = (valid * (pred - target).abs()).sum() / count
        mse = squared.sum() / count
        loss = w.l1 * l1 + w.l2 * mse
        # Logged values stay on the device until the step is queued: reading one (.item())
        # earlier would make the CPU wait for the forward pass before queuing the backward.
        out = {"l1": l1, "l2": mse}
        if self.perceptual is not None:
            lp = self.perceptual(pred * 2 - 1, target_full * 2 - 1).mean()
            loss = loss + w.perceptual * lp
            out["perceptual"] = lp
        if adversarial:
            with torch.no_grad():
                real = self.D(target_full * 2 - 1)
            fake = self.D(pred * 2 - 1)
            gan, fm = hinge_g_loss(fake), feature_matching_loss(real, fake)
            loss = loss + w.gan * gan + w.feature_matching * fm
            out.update(g_gan=gan, feature_matching=fm)
        loss.backward()
        self.opt_g.step()
        self.update_ema()
        self.sched_g.step()
        if adversarial:
            self.sched_d.step()
        self._last = (pred.detach(), target, valid)
        if adversarial:
            out["d_loss"] = d_loss
        out = {"loss": loss, **out, "psnr": -10 * torch.log10(mse.clamp_min(1e-10))}
        values = torch.stack([v.detach().float() for v in out.values()]).tolist()  # one wait
        return {**dict(zip(out, values)), "lr": self.sched_g.get_last_lr()[0]}

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
            from ..spacetime import save_spacetime

            meta = {"step": self.step}
            if self.ema is not None:
                meta["ema"] = self.cfg.spacetime.model.ema
            save_spacetime(self.model if self.ema is None else self.ema,
                           path.with_suffix(".safetensors"),
                           half=self.cfg.spacetime.model.save_fp16, metadata=meta)
            for old in sorted(path.parent.glob("step_*.safetensors")):
                if not old.with_suffix(".pt").exists():
                    old.unlink()
        return path

    def run(self) -> None:
        super().run(self.dataset)
