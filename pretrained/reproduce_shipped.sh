#!/usr/bin/env bash
# The training chain of pretrained/cinemagraph_spacetime.safetensors, step by step, as the
# records (git log, benchmarks/RESULTS.md, pretrained/candidates/README.md) give it. Run from
# the repository root on one GPU; runs go under runs/shipped/. About 34,500 + 28,514 training
# steps (some 4 hours at 4.3 steps/s on one H100 or H200). Not bit-exact: see MODEL_CARD.md,
# "Reproduce". PHOTOS: the folder of 78 photographs (pretrained/candidates/README.md).
set -euo pipefail
PHOTOS=${PHOTOS:?set PHOTOS to the folder of the 78 training photographs}
R=runs/shipped
train() { local part=$1; shift; python -m cinemagraph.train hydra.run.dir="$R/$part" "$@"; }
w() { printf '%s/%s/checkpoints/step_%07d.safetensors' "$R" "$1" "$2"; }

# --- Member A -------------------------------------------------------------------------------
# 1. from scratch, 12,250 + 3,000 + 2,750 steps.
train a1_1 experiment=spacetime_shipped_a1
train a1_2 experiment=spacetime_shipped_a1 spacetime.model.init="$(w a1_1 12250)" \
    train.lr=1.5e-4 train.decay_steps=1200 spacetime.data.seed=21 trainer.steps=3000
train a1_3 experiment=spacetime_shipped_a1 spacetime.model.init="$(w a1_2 3000)" \
    train.lr=3e-5 train.decay_steps=50000 spacetime.data.seed=22 trainer.steps=2750
# 2. 1,250 (seed 23) + 1,000 (seed 24) steps.
train a2_1 experiment=spacetime_shipped_a2
train a2_2 experiment=spacetime_shipped_a2 spacetime.model.init="$(w a2_1 1250)" \
    spacetime.data.seed=24 trainer.steps=1000
# 3. band 191 px, cracks 31 px, 3,250 steps.
train a3 experiment=spacetime_shipped_a3
# 4. relit, 2,000 + 2,250 + 2,000 steps.
train a4_1 experiment=spacetime_shipped_a4
train a4_2 experiment=spacetime_shipped_a4 spacetime.model.init="$(w a4_1 2000)" \
    spacetime.data.seed=33 trainer.steps=2250
train a4_3 experiment=spacetime_shipped_a4 spacetime.model.init="$(w a4_2 2250)" \
    spacetime.data.seed=34 trainer.steps=2000
# 5. cracks 9 px, lr 5e-5, 2,000 steps.
train a5 experiment=spacetime_shipped_a5
# 6. 1,250 steps, then the mean of steps 1,000 and 1,250 ("mean B").
train a6 experiment=spacetime_shipped_a6
python -m cinemagraph.train.weights soup "$R/mean_b.safetensors" "$(w a6 1000)" "$(w a6 1250)"
python - "$R" <<'PY'
import sys
from cinemagraph.spacetime import DecodeRules, load_spacetime, save_spacetime
model = load_spacetime(f"{sys.argv[1]}/mean_b.safetensors")  # the same fp16 values,
model.rules = DecodeRules(band_px=191, crack_px=9, fluid_px=191, fluid_rule="free",
                          fluid_border=True)                 # fluid 191 px in the metadata
save_spacetime(model, f"{sys.argv[1]}/mean_b_fluid191.safetensors")
PY
# 7. fluid 191 px, EMA 0.998, 1,500 steps; M2 = mean B x2 + step 1,500.
train a7 experiment=spacetime_shipped_a7
python -m cinemagraph.train.weights soup "$R/m2.safetensors" "$R/mean_b_fluid191.safetensors=2" "$(w a7 1500)=1"
# Member A: M2 with the decode-time rules (metadata only).
python - "$R" <<'PY'
import sys
from cinemagraph.spacetime import DecodeRules, load_spacetime, save_spacetime
model = load_spacetime(f"{sys.argv[1]}/m2.safetensors")
model.rules = DecodeRules()  # the shipped rules: fluid 191 px smoothed, not over the border
save_spacetime(model, f"{sys.argv[1]}/member_a.safetensors")
PY

# --- Member B: fourteen parts, each from the last one's fp16 weights, fresh optimiser -------
prev=""
# part seed steps lr decay_steps
while read -r part seed steps lr decay; do
    init=()
    [ -n "$prev" ] && init=(spacetime.model.init="$prev")
    train "$part" experiment=spacetime_shipped_b spacetime.data.photos="$PHOTOS" "${init[@]}" \
        spacetime.data.seed="$seed" trainer.steps="$steps" train.lr="$lr" train.decay_steps="$decay"
    prev=$(w "$part" "$steps")
done <<'PARTS'
b01 60 2000 5e-4 2800
b02 61 1200 5e-4 2800
b03 62 625 5e-4 2800
b04 63 4375 5e-4 2800
b05 64 1750 2.5e-4 2800
b06 65 2000 2.5e-4 2800
b07 66 1875 2.5e-4 2800
b08 68 1875 2.5e-4 2800
b09 69 1875 2.5e-4 2800
b10 70 2000 2.5e-4 2800
b11 71 1875 2.5e-4 2800
b12 72 1875 2.5e-4 2800
b13 73 1625 2.5e-4 2800
b14 74 3564 2.5e-4 3600
PARTS
cp "$prev" "$R/member_b.safetensors"

# --- The ensemble ---------------------------------------------------------------------------
python -m cinemagraph.train.weights ensemble "$R/cinemagraph_spacetime.safetensors" \
    "$R/member_a.safetensors=0.7" "$R/member_b.safetensors=0.3" --max-mb 16
