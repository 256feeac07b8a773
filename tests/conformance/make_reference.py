"""Make the compact conformance reference under tests/conformance from the full data.

    python tests/conformance/make_reference.py [FOLDER]   # FOLDER: ../shared/conformance

For each module NAME it writes ``NAME.keys.json`` (the full data's, verbatim) and ``NAME.npz``
(``dpt_hybrid.timm1.npz`` for the timm 1.x variant): see README.md here for what they hold.
Run it again only if the full data changes; the tests check the two agree where both exist.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from models.conformance import (BUDGET, digest, make_inputs, sample_indices,  # noqa: E402
                                stats)

MODULES = ["feature_net", "img_decoder", "motion_net", "inpaint_depth_net", "inpaint_color_net",
           "dpt_hybrid"]
SPARSE = 0.9  # an output with at least this share of zeros is kept whole, as index + value


def outputs(data: dict) -> dict:
    out = {}
    for key, ref in data.items():
        if key.startswith("in_"):
            continue
        ref = np.asarray(ref, np.float32)
        flat = ref.ravel()
        out[f"{key}.shape"] = np.array(ref.shape, np.int64)
        out[f"{key}.stats"] = stats(ref)
        if flat.size > BUDGET and (flat == 0).mean() >= SPARSE:
            index = np.flatnonzero(flat)
            out[f"{key}.index"] = index.astype(np.int32)
            out[f"{key}.values"] = flat[index]
        else:
            out[f"{key}.values"] = flat[sample_indices(ref.shape)]
    return out


def main(folder: Path) -> None:
    for name in MODULES:
        data = dict(np.load(folder / f"{name}.npz"))
        keys = json.loads((folder / f"{name}.keys.json").read_text())
        check = json.loads((folder / f"{name}.weights_check.json").read_text())
        assert list(check) == list(keys)
        shutil.copyfile(folder / f"{name}.keys.json", HERE / f"{name}.keys.json")
        # [sum, sum of |w|, w0, w1, w2]; NaN where a tensor has fewer than three elements
        arrays = {"weights_check": np.array([(check[k] + [np.nan] * 3)[:5] for k in keys],
                                            np.float64)}
        # Inputs are redrawn by the tests from the README's recipes; an input that does not
        # redraw bit for bit here is kept verbatim. Every input keeps a hash.
        redrawn = make_inputs(name)
        for key, value in data.items():
            if not key.startswith("in_"):
                continue
            if not torch.equal(redrawn[key], torch.from_numpy(value)):
                arrays[key] = value
                print(f"{name}: {key} kept verbatim ({value.size} values)")
            arrays[f"{key}.sha256"] = np.array(digest(value))
        assert set(redrawn) == {k for k in data if k.startswith("in_")}, name
        arrays.update(outputs(data))
        np.savez_compressed(HERE / f"{name}.npz", **arrays)
    timm1 = dict(np.load(folder / "dpt_hybrid.timm1.npz"))
    np.savez_compressed(HERE / "dpt_hybrid.timm1.npz", **outputs(timm1))
    for path in sorted(HERE.glob("*.np[z]")) + sorted(HERE.glob("*.json")):
        print(f"{path.name}: {path.stat().st_size / 1024:.0f} KiB")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else HERE.parents[2] / "shared" / "conformance")
