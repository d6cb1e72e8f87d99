#!/usr/bin/env bash
# One prepared run for a lent GPU machine (/work/.library/device), sized for its 15-minute lease: the H100 speed
# figures and a profile, then a time-limited training round continuing from the shipped weights.
#
#   here:  python scripts/pack_davis.py --out runs/davis_small          # ../shared does not travel
#   there: run(command="bash scripts/gpu_session.sh 4", carry=["runs/davis_small"], timeout_s=570)
#
# Seen on an H100 (2026-11-26): start and transfers 30-110 s, smoke + CUDA tests ~20 s, bench ~70 s,
# profile ~30 s, and about a minute around training (workers, final validation, copies). A training-only round of 8 minutes fits one
# 600 s call: SKIP_BENCH=1 bash scripts/gpu_session.sh 8. Judge its weights here with benchmarks/davis_jf.py
# (--adapt-steps 60, with and without --corrections 2) and benchmarks/long_clip_tracking.py.
#
# Minutes 0 skips training; PROFILE=0 skips the profile; AB=path/to/an/older/tree (carried) times this tree
# against it on the same machine; INIT=weights.pt continues from another weights file (carry it). A failed import
# stops the script within seconds (so a rerun fits the lease); after that the steps are independent and each
# has its own time limit: the CUDA-graph tests, the bench, the profile, training. SPY=1 (with py-spy's wheel in
# .whl, carried) samples every thread of a 480 px run, with frames rendered during and before it. $OUT takes at
# most 8 files of 16 MiB, so training runs in $WORK (last.pt, with the optimizer, is 29 MB) and only the
# weights-only best.pt/final.pt and the log come back. The training schedule anneals over the given minutes
# (`--max-minutes`), whatever the step rate turns out to be.
set -uo pipefail
MINUTES="${1:-4}"
OUT="${OUT:-runs/gpu}"
WORK="${WORK:-/tmp/stm_train}"
DAVIS="${DAVIS:-runs/davis_small}"
DEVICE="${DEVICE:-cuda}"
PY="${PYTHON:-python3}"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
mkdir -p "$OUT" "$WORK"
exec > >(tee -a "$OUT/session.log") 2>&1
date; nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm --format=csv || true
$PY - "$DEVICE" <<'PY' || { echo "smoke test failed: stopping"; exit 3; }
import sys, time, torch
from stm_core.engine.settings import EngineSettings
from stm_core.io.generated import GeneratedVideo
from stm_core.session import AnnotationSession
print("torch", torch.__version__, "cuda", torch.cuda.is_available(), torch.cuda.get_device_name() if torch.cuda.is_available() else "")
video = GeneratedVideo(4, (480, 854), 1)
session = AnnotationSession(video, EngineSettings(device=sys.argv[1], adapt_steps=0))
session.prepare()
session.set_annotation(0, video.labels(0))
t0 = time.perf_counter()
print("smoke propagate:", len(session.propagate(0, "forward").frames), "frames in", round(time.perf_counter() - t0, 2), "s")
PY
timeout 120 $PY -m pytest -q -p no:cacheprovider tests/test_cuda_graphs.py || echo "CUDA tests failed: $?"
if [ -z "${SKIP_BENCH:-}" ]; then
  timeout 150 $PY -m stm_core bench --device "$DEVICE" --json "$OUT/bench.json" || echo "bench failed or timed out: $?"
  if [ "${PROFILE:-1}" = 1 ]; then
    timeout 45 $PY scripts/profile_engine.py --device "$DEVICE" --height 480 > "$OUT/profile.txt" 2>&1 \
      || echo "profile failed or timed out: $?"
    head -8 "$OUT/profile.txt"
  fi
fi
if [ -n "${AB:-}" ]; then  # this tree against an older one (carried), alternately: scripts/ab_speed.py
  timeout 120 $PY scripts/ab_speed.py "$AB" --device "$DEVICE" --rounds 2 --frames "${AB_FRAMES:-96}" \
    | tee "$OUT/ab_speed.txt" || echo "A/B failed or timed out: $?"
fi
if [ -n "${SPY:-}" ]; then  # where the host's time goes at 480 px, every thread: py-spy carried as a wheel in .whl
  if $PY -m pip install -q --no-index --no-deps --target /tmp/pyspy .whl/py_spy-*.whl; then
    for mode in source decoded; do
      timeout 90 /tmp/pyspy/bin/py-spy record --threads --idle --nonblocking --rate 250 --format raw \
        -o "$OUT/pyspy_480_$mode.txt" -- $PY scripts/time_propagation.py "$DEVICE" 400 1 0 $mode \
        || echo "py-spy ($mode) failed or timed out: $?"
    done
  fi
  timeout 60 $PY scripts/time_propagation.py "$DEVICE" 400 1 0 decoded || echo "decoded timing failed: $?"
fi
[ "$MINUTES" = 0 ] && { ls -la "$OUT"; exit 0; }
limit=$(awk -v m="$MINUTES" 'BEGIN { print int(m * 60 + 75) }')
timeout "$limit" $PY -m stm_core train --device "$DEVICE" --out-dir "$WORK" \
  --init-weights "${INIT:-resources/weights/stm_small.pt}" --davis-root "$DAVIS" --max-minutes "$MINUTES" --steps 100000 \
  --lr 4e-4 --warmup 200 --batch-size 32 --val-every 2000 --val-height 240 --ckpt-every 500 --log-every 100 \
  --workers "${WORKERS:-14}" || echo "training failed or timed out: $?"
cp "$WORK"/best.pt "$WORK"/final.pt "$WORK"/log.jsonl "$OUT"/ 2>/dev/null
ls -la "$OUT"; date
