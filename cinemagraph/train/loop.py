"""What every training task shares: the run directory, checkpoints and resume, the seeded
epoch order, the loop with its CSV log, sample pictures and progress bar, and data-parallel
bookkeeping (one process per GPU under ``torchrun``; rank 0 writes).

A task subclasses :class:`Trainer` and provides ``modules()`` (name -> module or optimiser
or scheduler, everything a checkpoint holds), ``train_step(batch) -> dict`` and
``save_sample() -> Path``. Checkpoints are ``checkpoints/step_NNNNNNN.pt`` written through
a temporary name, read back with ``weights_only=True``; the last ``keep_last`` are kept.
"""

from __future__ import annotations

import csv
import logging
import os
import time
from pathlib import Path

import numpy as np
import torch
from omegaconf import OmegaConf

from ..errors import UserError

log = logging.getLogger("cinemagraph.train")


#: ``trainer.num_workers`` for "choose for me" (the default): :func:`loader_workers`.
AUTO_WORKERS = -1


def loader_workers(num_workers: int, device_type: str, cpus: int | None) -> int:
    """The loader's worker processes for ``trainer.num_workers``: that many when
    ``num_workers`` >= 0; for :data:`AUTO_WORKERS`, on a GPU each process's share of the
    machine's CPUs (``cpus``; 1 worker where None, unknown) less one, and on the CPU none,
    where the main process's own computation needs the cores. Other values are a UserError.

    The items are seeded by their index, so the count changes the speed, not the batches (to
    float rounding: a worker computes with one thread). On the H200 a spacetime run with its
    batches made in the main process waited for data 92 % of the time (1.3 steps/s instead of
    4.4 with 15 workers; ``benchmarks/RESULTS.md``, "Training throughput")."""
    if num_workers >= 0:
        return int(num_workers)
    if num_workers != AUTO_WORKERS:
        raise UserError(f"trainer.num_workers={num_workers}: give a count of loader processes "
                        f"(0: none, batches made in the main process) or {AUTO_WORKERS} "
                        "(automatic)")
    if device_type != "cuda":
        return 0
    return max(1, (cpus or 2) - 1)


def loader_warning(device_type: str, num_workers: int, cpus: int | None) -> str | None:
    """The warning for a GPU run whose batches are made in the main process
    (``trainer.num_workers=0`` asked for), or None; ``cpus``: each process's share of the
    machine's CPUs (None where unknown); see :func:`loader_workers`."""
    if device_type != "cuda" or num_workers != 0:
        return None
    hint = loader_workers(AUTO_WORKERS, device_type, cpus)
    return (f"trainer.num_workers is 0: the batches are made in the main process, and the GPU "
            f"may wait for them most of the time; set trainer.num_workers={hint} "
            f"(each process's share of the CPUs less one) or {AUTO_WORKERS} (automatic)")


def distributed() -> tuple[int, int]:
    """Return ``(rank, world_size)``; 0, 1 outside ``torchrun``."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def init_distributed(device_name: str) -> torch.device:
    """Start the process group when launched by ``torchrun`` (NCCL on GPUs, gloo on CPUs) and
    return this process's device."""
    import torch.distributed as dist

    world = int(os.environ.get("WORLD_SIZE", "1"))
    from ..device import select_device

    device = select_device(device_name)
    if world <= 1:
        return device
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if device.type == "cuda":
        device = torch.device("cuda", local)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return device


class Trainer:
    """See the module docstring. ``cfg``: a composed ``TrainConfig``; ``out``: the run dir."""

    name = "training"

    def __init__(self, cfg, out: Path, device: torch.device):
        self.cfg, self.out, self.device = cfg, Path(out), device
        self.rank, self.world = distributed()
        self.step = 0
        #: Dataset items a batch takes (a task whose items hold several samples sets fewer).
        self.loader_batch_size = cfg.trainer.batch_size
        cpus = os.cpu_count()
        #: Each process's share of the machine's CPUs (None where unknown).
        self.cpus = cpus // self.world if cpus else None
        #: The loader's worker processes (:func:`loader_workers`).
        self.workers = loader_workers(cfg.trainer.num_workers, device.type, self.cpus)
        if self.rank == 0:
            (self.out / "checkpoints").mkdir(parents=True, exist_ok=True)

    def make_optimizers(self, generator_params, discriminator_params) -> None:
        """Adam for the generator and the discriminator with ``cfg.train``'s rates and betas
        (fused), each rate multiplied by ``decay`` every ``decay_steps``."""
        o = self.cfg.train

        def adam(params, lr):
            # Fused: one kernel updates every parameter (the default launches several per
            # parameter, which dominated a small network's step on the GPU).
            return torch.optim.Adam(params, lr, betas=(o.beta1, o.beta2), fused=True)

        self.opt_g = adam(generator_params, o.lr)
        self.opt_d = adam(discriminator_params, o.lr_d)
        self.sched_g = torch.optim.lr_scheduler.StepLR(self.opt_g, o.decay_steps, o.decay)
        self.sched_d = torch.optim.lr_scheduler.StepLR(self.opt_d, o.decay_steps, o.decay)

    def modules(self) -> dict:
        raise NotImplementedError

    def train_step(self, batch) -> dict[str, float]:
        raise NotImplementedError

    def save_sample(self) -> Path:
        raise NotImplementedError

    # --- checkpoints ------------------------------------------------------------------

    def checkpoints(self) -> list[Path]:
        return sorted((self.out / "checkpoints").glob("step_*.pt"))

    def extra_state(self) -> dict:
        """Entries a task adds to its checkpoints (e.g. the official ``netG`` name)."""
        return {}

    def save(self) -> Path | None:
        if self.rank != 0:
            return None
        path = self.out / "checkpoints" / f"step_{self.step:07d}.pt"
        state = {name: _unwrap(m).state_dict() for name, m in self.modules().items()}
        state.update(self.extra_state())
        state.update(step=self.step, config=OmegaConf.to_yaml(self.cfg))
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
        for name, module in self.modules().items():
            if name not in state:
                raise UserError(f"'{found[-1]}' holds no '{name}' (the run was started with "
                                "other settings): resume it with those, or start a new run "
                                "directory (its weights can be the init)")
            _unwrap(module).load_state_dict(state[name])
        self.step = int(state["step"])
        log.info("resumed from '%s' at step %d", found[-1], self.step)

    # --- data -------------------------------------------------------------------------

    def epoch_order(self, epoch: int, length: int) -> list[int]:
        """The item order of ``epoch``, the same on every rank and run; this rank's share."""
        g = torch.Generator().manual_seed(int(np.random.SeedSequence(
            [self.cfg.trainer.seed, epoch]).generate_state(1)[0]))
        order = torch.randperm(length, generator=g).tolist()
        return order[self.rank::self.world]

    def batches(self, dataset):
        """Yield batches forever; a resumed run continues with the next one."""
        yield from self.new_batches(dataset, self.step)

    def new_batches(self, dataset, start: int):
        """Yield the batches forever from the ``start``-th on, epoch after epoch, each rank its
        share of every epoch."""
        t = self.cfg.trainer
        batch_size = self.loader_batch_size
        per_epoch = max(1, len(dataset) // (batch_size * self.world))
        epoch, skip = divmod(start, per_epoch)
        while True:
            if hasattr(dataset, "epoch"):
                dataset.epoch = epoch
            # A resumed epoch starts at its first unseen batch: the items before it are left
            # out of the loader rather than made and dropped (items can be expensive).
            order = self.epoch_order(epoch, len(dataset))[skip * batch_size:]
            loader = torch.utils.data.DataLoader(
                torch.utils.data.Subset(dataset, order),
                batch_size=batch_size, drop_last=True, num_workers=self.workers,
                collate_fn=getattr(self, "collate", None),
                pin_memory=self.device.type == "cuda" and t.pin_memory,
                prefetch_factor=4 if self.workers else None)
            for i, batch in enumerate(loader, start=skip):
                yield batch
                if i + 1 >= per_epoch:
                    break
            epoch, skip = epoch + 1, 0

    # --- the loop ---------------------------------------------------------------------

    def run(self, dataset) -> None:
        t = self.cfg.trainer
        log.info("%s: %d item(s) per epoch from %s, steps %d -> %d on %s%s", self.name,
                 len(dataset), type(dataset).__name__, self.step, t.steps, self.device,
                 f", {self.world} processes" if self.world > 1 else "")
        if self.step >= t.steps:
            log.info("nothing to do: already at step %d", self.step)
            return
        if t.time_limit < 0:
            raise UserError(f"trainer.time_limit={t.time_limit}: give seconds of training "
                            "(0: no limit)")
        warning = loader_warning(self.device.type, t.num_workers, self.cpus)
        if warning and self.rank == 0:
            log.warning(warning)
        if t.num_workers == AUTO_WORKERS and self.rank == 0:
            log.info("data: %d loader process(es)%s (trainer.num_workers=%d: automatic)",
                     self.workers, " per GPU" if self.world > 1 else "", AUTO_WORKERS)
        from tqdm import tqdm

        metrics_path = self.out / "metrics.csv"
        new = not metrics_path.exists()
        f = open(metrics_path, "a", newline="") if self.rank == 0 else None
        writer = None
        start = time.perf_counter()
        bar = tqdm(total=t.steps, initial=self.step, desc=self.name, unit="step",
                   disable=None if self.rank == 0 else True)
        waited = 0.0  # seconds spent waiting for batches (the rest is the training step)
        batches = iter(self.batches(dataset))
        try:
            while True:
                tick = time.perf_counter()
                batch = next(batches)
                waited += time.perf_counter() - tick
                losses = self.train_step(batch)
                self.step += 1
                bar.update(1)
                last = self.step >= t.steps or self.out_of_time(start)
                if f is not None and (self.step % t.log_every == 0 or last):
                    row = {"step": self.step, **losses,
                           "seconds": round(time.perf_counter() - start, 3),
                           "data_seconds": round(waited, 3)}
                    if writer is None:
                        writer = csv.DictWriter(f, fieldnames=list(row))
                        if new:
                            writer.writeheader()
                    writer.writerow(row)
                    f.flush()
                if self.rank == 0 and (self.step % t.sample_every == 0 or last):
                    self.save_sample()
                if self.step % t.checkpoint_every == 0 or last:
                    self.save()
                if last:
                    break
        finally:
            bar.close()
            if f is not None:
                f.close()
        log.info("%s: reached step %d%s; checkpoints in '%s'", self.name, self.step,
                 "" if self.step >= t.steps else
                 f" of {t.steps} (trainer.time_limit={t.time_limit:g} s; run again to go on)",
                 self.out / "checkpoints")
        if self.world > 1:
            self.check_replicas()

    def out_of_time(self, start: float) -> bool:
        """Whether ``trainer.time_limit`` seconds have passed since ``start`` (never where it
        is 0). Under ``torchrun`` rank 0's clock decides for every process, so that all stop
        after the same step."""
        limit = float(self.cfg.trainer.time_limit)
        if limit <= 0:
            return False
        over = time.perf_counter() - start >= limit
        if self.world > 1:
            import torch.distributed as dist

            flag = torch.tensor([float(over)], device=self.device)
            dist.broadcast(flag, 0)
            over = bool(flag.item())
        return over

    def check_replicas(self) -> list[str]:
        """Compare every process's weights (SHA-256 of all module parameters and buffers);
        rank 0 writes ``replicas.json``. Raises if they differ: data-parallel training must
        keep one model."""
        import hashlib
        import json

        import torch.distributed as dist

        digest = hashlib.sha256()
        for name, module in sorted(self.modules().items()):
            if isinstance(module, torch.nn.Module):
                for key, value in sorted(_unwrap(module).state_dict().items()):
                    digest.update(key.encode())
                    digest.update(value.detach().cpu().contiguous().numpy().tobytes())
        digests = [None] * self.world
        dist.all_gather_object(digests, digest.hexdigest())
        same = len(set(digests)) == 1
        if self.rank == 0:
            (self.out / "replicas.json").write_text(json.dumps(
                {"step": self.step, "world_size": self.world, "identical": same,
                 "sha256": digests}, indent=1))
        log.info("weights of the %d processes after step %d: %s", self.world, self.step,
                 "identical" if same else "DIFFERENT")
        if not same:
            raise RuntimeError(f"data-parallel replicas differ after step {self.step}: {digests}")
        return digests


def _unwrap(module):
    return module.module if isinstance(module, torch.nn.parallel.DistributedDataParallel) else module
