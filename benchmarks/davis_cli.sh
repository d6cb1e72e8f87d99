#!/usr/bin/env bash
# Issue 3's acceptance run: the CLI propagates every shared DAVIS-2016 sequence from its first-frame mask,
# then `evaluate` scores the output. Usage: bash benchmarks/davis_cli.sh [OUT_DIR] [extra propagate args]
set -euo pipefail
DAVIS="$(cd "$(dirname "$0")/../.." && pwd)/shared/data/davis2016"
OUT="${1:-/tmp/stm_davis_out}"; shift || true
# OUT is cleared only if it is empty or holds an earlier run of this script (QA pass 32: it deleted any folder)
if [ -e "$OUT" ] && [ -n "$(ls -A "$OUT")" ] && [ ! -e "$OUT/.davis_cli" ]; then
  echo "error: $OUT holds other files; give an empty or new folder" >&2; exit 2
fi
rm -rf "$OUT"; mkdir -p "$OUT/first"; touch "$OUT/.davis_cli"
frames=0; start=$(date +%s.%N)
for seq_dir in "$DAVIS"/JPEGImages/480p/*/; do
  seq=$(basename "$seq_dir")
  mkdir -p "$OUT/first/$seq"
  cp "$DAVIS/Annotations/480p/$seq/00000.png" "$OUT/first/$seq/"
  python -m stm_core propagate "$seq_dir" --annotations "$OUT/first/$seq" --output "$OUT/pred/$seq" --quiet "$@"
  frames=$((frames + $(ls "$seq_dir" | wc -l) - 1))
done
end=$(date +%s.%N)
python -m stm_core evaluate "$DAVIS/Annotations/480p" "$OUT/pred" --json "$OUT/scores.json"
python -c "print(f'{$frames} propagated frames in {$end - $start:.1f} s (model loading included): {($end - $start) / $frames:.3f} s per frame')"
