#!/usr/bin/env bash
# One prepared run for a lent GPU machine (/work/.library/device): the H100 speed figures, then a training
# round continuing from the shipped weights, then its validation sweep; everything lands in $OUT.
#
#   here:  python scripts/pack_davis.py --out runs/davis_small          # ../shared does not travel
#   there: run(command="bash scripts/gpu_session.sh 8", carry=["runs/davis_small"], timeout_s=600)
#
# Steps are independent: a failed bench does not stop training. Training writes $OUT/train/last.pt
# (resumable: run again with that folder carried back) and best.pt; the validation sweep runs on the
# downscaled copy, so compare it only with the shipped weights scored the same way (done here too).
set -uo pipefail
MINUTES="${1:-8}"
OUT="${OUT:-runs/gpu}"
DAVIS="${DAVIS:-runs/davis_small}"
DEVICE="${DEVICE:-cuda}"
mkdir -p "$OUT"
exec > >(tee -a "$OUT/session.log") 2>&1
date; nvidia-smi || true
python -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())"
if [ -z "${SKIP_BENCH:-}" ]; then
  python -m stm_core bench --device "$DEVICE" --json "$OUT/bench.json" || echo "bench failed: $?"
fi
python -m stm_core train --device "$DEVICE" --out-dir "$OUT/train" --init-weights resources/weights/stm_small.pt \
  --davis-root "$DAVIS" --max-minutes "$MINUTES" --steps 3000 --lr 3e-4 --warmup 100 --batch-size 16 \
  --val-every 500 --val-height 144 --ckpt-every 200 --workers 4 || echo "training failed: $?"
for weights in resources/weights/stm_small.pt "$OUT/train/best.pt"; do
  [ -f "$weights" ] || continue
  python benchmarks/davis_jf.py --davis-root "$DAVIS" --weights "$weights" --device "$DEVICE" --sequences val \
    --json "$OUT/val_$(basename "$weights" .pt).json" || echo "validation failed: $?"
done
date
