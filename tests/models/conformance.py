"""Helpers for the conformance data: the compact reference under tests/conformance (always
present, made by tests/conformance/make_reference.py) and the full data in ../shared/conformance
(where present; see its README)."""

from __future__ import annotations

import hashlib
import json
import math
import zlib
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

COMPACT = Path(__file__).resolve().parents[1] / "conformance"

# Elements kept of an output: all of a smaller one; of a larger one a contiguous run at each
# end (borders of the first and last planes) and a stride coprime with the plane in between.
BUDGET = 8192


def rule_weights(keys: dict) -> dict:
    """Return the README's deterministic weights for a ``{key: shape}`` layout."""
    out = {}
    for name, shape in keys.items():
        g = torch.Generator().manual_seed(zlib.crc32(name.encode()))
        shape = tuple(shape)
        numel = math.prod(shape)
        if name.endswith("num_batches_tracked"):
            value = torch.zeros(shape, dtype=torch.long)
        elif name.endswith("mask_conv.weight"):
            value = torch.ones(shape)
        elif name.endswith("running_var"):
            value = 1.0 + 0.1 * torch.rand(shape, generator=g)
        elif name.endswith("running_mean"):
            value = 0.1 * torch.randn(shape, generator=g)
        elif name.endswith("weight_u") or name.endswith("weight_v"):
            v = torch.randn(shape, generator=g)
            value = v / v.norm()
        elif len(shape) >= 2:
            value = torch.randn(shape, generator=g) / math.sqrt(numel / shape[0])
        elif len(shape) == 1 and name.endswith("weight"):
            value = 1.0 + 0.1 * torch.randn(shape, generator=g)
        elif len(shape) == 1:
            value = 0.1 * torch.randn(shape, generator=g)
        else:
            value = torch.tensor(1.0)
        out[name] = value
    return out


def weight_summary(weights: dict) -> dict:
    """``{key: (sum, sum of |w|, first three values)}``, summed in float64."""
    out = {}
    for name, w in weights.items():
        flat = w.flatten()
        if flat.is_floating_point():
            total = flat.sum(dtype=torch.float64).item()
            total_abs = flat.abs().sum(dtype=torch.float64).item()
        else:
            total = total_abs = flat.abs().sum().item()
        out[name] = (total, total_abs, flat[:3].double().tolist())
    return out


def check_rule_weights(weights: dict, check: dict, summary: dict | None = None) -> None:
    """Assert the weights match ``NAME.weights_check.json`` (sums and first values)."""
    summary = summary or weight_summary(weights)
    for name, (total, total_abs, *first) in check.items():
        got_total, got_abs, got_first = summary[name]
        assert math.isclose(got_total, total, rel_tol=1e-6, abs_tol=1e-6), name
        assert math.isclose(got_abs, total_abs, rel_tol=1e-6, abs_tol=1e-6), name
        for got, want in zip(got_first, first):
            assert math.isclose(got, want, rel_tol=1e-6, abs_tol=1e-7), name


def relative_errors(a: torch.Tensor, ref: torch.Tensor) -> tuple[float, float]:
    """Return ``(max_rel, rms_rel)`` as the README defines them."""
    a, ref = a.double(), ref.double()
    max_rel = ((a - ref).abs().max() / ref.abs().max()).item()
    rms_rel = ((a - ref).square().mean().sqrt() / ref.square().mean().sqrt()).item()
    return max_rel, rms_rel


# --- the compact reference -----------------------------------------------------------------

def digest(t) -> str:
    """A short hash of an array's float32 bytes (C order, little endian)."""
    a = np.ascontiguousarray(np.asarray(t), dtype="<f4")
    return hashlib.sha256(a.tobytes()).hexdigest()[:16]


def stats(t) -> np.ndarray:
    """``[mean, rms, max|x|, min, max]`` in float64 over all elements."""
    a = np.asarray(t, dtype=np.float64).ravel()
    return np.array([a.mean(), np.sqrt(np.mean(a * a)), np.abs(a).max(), a.min(), a.max()])


def sample_indices(shape, budget: int = BUDGET) -> np.ndarray:
    """The flat indices of the elements the compact reference keeps of an output."""
    n = math.prod(shape)
    if n <= budget:
        return np.arange(n)
    edge = budget // 8
    plane = math.prod(shape[-2:])
    step = -(-(n - 2 * edge) // (budget - 2 * edge))
    while math.gcd(step, plane) != 1:  # successive samples move through rows and columns
        step += 1
    middle = np.arange(edge + step // 2, n - edge, step)
    return np.concatenate([np.arange(edge), middle, np.arange(n - edge, n)])


def make_inputs(name: str, stored: dict | None = None) -> dict:
    """The README's inputs of one module, drawn from ``Generator().manual_seed(1234)``.

    ``stored`` holds inputs kept verbatim where redrawing is not bit-exact (the inpainting
    depth's zero-mean log depth, whose float32 log and mean differ by an ulp across builds)."""
    stored = stored or {}
    g = torch.Generator().manual_seed(1234)
    if name == "feature_net":
        def layers(n, h, w):
            rgb = torch.rand(n, 3, h, w, generator=g)
            alpha = (torch.rand(n, 1, h, w, generator=g) > 0.3).float()
            return torch.cat([rgb * alpha, alpha], 1)
        return {"in_x": layers(3, 64, 96), "in_x_b": layers(3, 70, 100)}
    if name == "img_decoder":
        def side(h, w):
            return torch.cat([torch.rand(1, 3, h, w, generator=g), torch.rand(1, 1, h, w, generator=g),
                              torch.randn(1, 32, h, w, generator=g),
                              torch.rand(1, 1, h, w, generator=g)], 1)
        out = {"in_x0": side(64, 96), "in_x1": side(64, 96)}
        out["in_x0_b"], out["in_x1_b"] = side(80, 112), side(80, 112)
        out["in_t"] = torch.tensor(0.3)
        return out
    if name == "motion_net":
        image = torch.rand(1, 3, 256, 256, generator=g) * 2 - 1
        mask = F.interpolate((torch.rand(1, 1, 16, 16, generator=g) > 0.5).float(),
                             size=(256, 256), mode="nearest")
        hint = 0.1 * torch.randn(1, 2, 256, 256, generator=g) * mask
        return {"in_image": image, "in_mask": mask, "in_hint": hint}
    if name in ("inpaint_depth_net", "inpaint_color_net"):
        out = {}
        for suffix, (h, w) in (("", (128, 128)), ("_b", (100, 120))):
            field = F.interpolate(torch.rand(1, 1, 8, 8, generator=g), size=(h, w),
                                  mode="bilinear", align_corners=False)
            context = (field > 0.45).float()
            bbox = torch.zeros(1, 1, h, w)
            bbox[..., 8:h - 8, 8:w - 8] = 1
            out["in_holes" + suffix] = (1 - context) * bbox
            out["in_context" + suffix] = context
            out["in_edge" + suffix] = torch.zeros(1, 1, h, w)
            if name == "inpaint_depth_net":
                depth = 1 + 4 * torch.rand(1, 1, h, w, generator=g)
                log_depth = torch.log(depth + 1e-8) * context
                x = (log_depth - log_depth[context > 0].mean()) * context
                key = "in_depth" + suffix
                out[key] = torch.from_numpy(stored[key]) if key in stored else x
            else:
                out["in_rgb" + suffix] = torch.rand(1, 3, h, w, generator=g) * context
        return out
    if name == "dpt_hybrid":
        return {"in_x": torch.rand(1, 3, 384, 512, generator=g) * 2 - 1}
    raise KeyError(name)


def _shared():
    from conftest import SHARED

    return SHARED / "conformance"


class Reference:
    """One module's reference outputs: the compact ones always, the full ones where present.

    ``name`` is a module (``feature_net``...) or a variant data file (``dpt_hybrid.timm1``)."""

    def __init__(self, name: str):
        self.name = name
        module = name.split(".")[0]
        keys_file = COMPACT / f"{module}.keys.json"
        self.keys = json.loads(keys_file.read_text())
        with np.load(COMPACT / f"{name}.npz") as z:
            self.compact = dict(z)
        full = _shared() / f"{name}.npz"
        self.full = ({k: torch.from_numpy(v) for k, v in np.load(full).items()}
                     if full.exists() else None)
        self._inputs = None

    @property
    def inputs(self) -> dict:
        """The inputs, redrawn (or stored) and checked against the hashes and the full data."""
        if self._inputs is None:
            inputs = make_inputs(self.name, self.compact)
            for key, value in inputs.items():
                assert digest(value) == str(self.compact[f"{key}.sha256"]), \
                    f"{self.name}: redrawn input {key} differs from the original's"
                if self.full is not None:
                    assert torch.equal(value, self.full[key]), key
            self._inputs = inputs
        return self._inputs

    def __getitem__(self, key):
        return self.inputs[key]

    def weights(self) -> dict:
        """The rule weights, checked against the weight checks (compact, and the full JSON)."""
        weights = rule_weights(self.keys)
        summary = weight_summary(weights)
        check = self.compact["weights_check"]
        assert len(check) == len(self.keys)
        check_rule_weights(weights, {k: [v for v in row.tolist() if not math.isnan(v)]
                                     for k, row in zip(self.keys, check)}, summary)
        if self.full is not None:
            check_rule_weights(weights, json.loads(
                (_shared() / f"{self.name}.weights_check.json").read_text()), summary)
        return weights

    def reference(self, out: str):
        """The whole reference array where the compact data holds it (small or sparse), else None."""
        shape = tuple(int(s) for s in self.compact[f"{out}.shape"])
        values = self.compact[f"{out}.values"]
        if f"{out}.index" in self.compact:
            full = np.zeros(math.prod(shape), np.float32)
            full[self.compact[f"{out}.index"]] = values
            return torch.from_numpy(full.reshape(shape))
        if values.size == math.prod(shape):
            return torch.from_numpy(values.reshape(shape))
        return None

    def errors(self, out: str, y: torch.Tensor, max_rel: float, rms_rel: float) -> list[str]:
        """What fails the README's tolerances; empty where ``y`` conforms. Uses the full data
        where present and always the compact data: the whole array where it is kept, else its
        statistics (exact consequences of the tolerances) and the kept elements."""
        problems = []
        shape = tuple(int(s) for s in self.compact[f"{out}.shape"])
        if tuple(y.shape) != shape:
            return [f"{out}: shape {tuple(y.shape)}, expected {shape}"]
        if self.full is not None:
            got = relative_errors(y, self.full[out])
            if got[0] > max_rel or got[1] > rms_rel:
                problems.append(f"{out} (full data): max_rel, rms_rel = {got}")
        ref = self.reference(out)
        if ref is not None:
            got = relative_errors(y, ref)
            if got[0] > max_rel or got[1] > rms_rel:
                problems.append(f"{out} (compact, whole): max_rel, rms_rel = {got}")
            return problems
        mean, rms, absmax, lo, hi = self.compact[f"{out}.stats"]
        s = stats(y.detach().cpu())
        # |mean(y) - mean(r)| and |rms(y) - rms(r)| are at most rms(y - r); the extremes move
        # by at most max|y - r|.
        for label, got, want, scale in (("mean", s[0], mean, rms_rel * rms),
                                        ("rms", s[1], rms, rms_rel * rms),
                                        ("max|y|", s[2], absmax, max_rel * absmax),
                                        ("min", s[3], lo, max_rel * absmax),
                                        ("max", s[4], hi, max_rel * absmax)):
            if abs(got - want) > scale:
                problems.append(f"{out} (compact): {label} {got:.7g}, expected {want:.7g} "
                                f"within {scale:.3g}")
        picked = y.detach().cpu().double().flatten()[torch.from_numpy(sample_indices(shape))]
        diff = picked - torch.from_numpy(self.compact[f"{out}.values"]).double()
        got = (diff.abs().max().item() / absmax, diff.square().mean().sqrt().item() / rms)
        if got[0] > max_rel or got[1] > rms_rel:
            problems.append(f"{out} (compact, {diff.numel()} elements): max_rel, rms_rel = {got}")
        return problems

    def assert_close(self, out: str, y: torch.Tensor, max_rel: float = 1e-4,
                     rms_rel: float = 2e-5) -> None:
        problems = self.errors(out, y, max_rel, rms_rel)
        assert not problems, f"{self.name}: " + "; ".join(problems)

    def assert_max_abs(self, out: str, y: torch.Tensor, max_abs: float) -> None:
        """``max|y - r| <= max_abs`` (DPT's out_y, almost all zeros: kept whole, sparse)."""
        refs = [("compact", self.reference(out))]
        if self.full is not None:
            refs.append(("full data", self.full[out]))
        for label, ref in refs:
            assert ref is not None and y.shape == ref.shape, (out, label)
            got = (y.double() - ref.double()).abs().max().item()
            assert got <= max_abs, f"{self.name}: {out} ({label}): max_abs {got}"
