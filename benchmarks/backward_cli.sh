#!/usr/bin/env bash
# The CLI propagating backward from one mask through a video, with this tree and another checkout, and whether
# their masks agree (a backward run reads a long-GOP video backward: see BENCHMARKS.md, "Reading a long-GOP video").
# Usage: bash benchmarks/backward_cli.sh VIDEO MASK_PNG OLD_TREE WORK_DIR
#   MASK_PNG is named as its frame (00240.png for frame 240); WORK_DIR gets the masks of both runs.
set -euo pipefail
VIDEO="$1"; MASK="$2"; OLD="$(cd "$3" && pwd)"; WORK="$4"
HERE="$(cd "$(dirname "$0")/.." && pwd)"
mkdir -p "$WORK/annotations"
cp "$MASK" "$WORK/annotations/"
for variant in "this:$HERE" "old:$OLD"; do
  name=${variant%%:*}; root=${variant#*:}
  rm -rf "$WORK/out_$name"
  start=$(date +%s.%N)
  (cd "$root" && PYTHONPATH="$root" python -m stm_core propagate "$VIDEO" --annotations "$WORK/annotations" \
     --output "$WORK/out_$name" --direction backward --adapt-steps 0 --quiet)
  end=$(date +%s.%N)
  echo "$name: $(python -c "print(round($end - $start, 1))") s, $(ls "$WORK/out_$name" | wc -l) masks"
done
python - "$WORK" <<'PY'
import sys
from pathlib import Path

import numpy as np
from PIL import Image

work = Path(sys.argv[1])
names = sorted(p.name for p in (work / "out_this").glob("*.png"))
differ = sum(int((np.array(Image.open(work / "out_this" / n)) != np.array(Image.open(work / "out_old" / n))).sum())
             for n in names)
print(f"pixels differing between the two runs over {len(names)} masks: {differ}")
PY
