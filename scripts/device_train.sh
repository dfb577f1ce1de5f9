#!/usr/bin/env bash
# One training call on a lent GPU machine (see docs/training.md, "Training on a lent GPU machine").
#
#   here:    python scripts/ferplus_pack.py pack ../shared/data/ferplus/fer2013_ferplus.npz .devdata/ferplus.pack.npz
#   here:    python -m mien.training.effnet transport .devdata/imagenet.fp16.npz   (gpu-imagenet only)
#   device:  bash scripts/device_train.sh TEACHERS BUDGET_S [PRESET]   (carry .devdata; $OUT is set there)
#   here:    extract $OUT/run.tar.gz, then export, package and evaluate the student on the CPU
#
# The recipe gets BUDGET_S seconds (probe, teachers, student) and is stopped at BUDGET_S + 60;
# unpacking the data and collecting the run take about 20 s more, so pick BUDGET_S at least 90 s
# under the call's time limit (2 480 ran 481 s of a 600 s call on one H100).
set -euo pipefail
teachers=${1:-4}
budget=${2:-500}
preset=${3:-gpu}
: "${OUT:?OUT must name the folder whose files come back}"
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD/src"
(nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || echo "no nvidia-smi") | tee "$OUT/gpu.txt"
python3 scripts/ferplus_pack.py unpack .devdata/ferplus.pack.npz /tmp/fer.npz
# the device machine reaches no registry: the ImageNet weights travel as a checked float16 copy
if [ -e .devdata/imagenet.fp16.npz ]; then export MIEN_IMAGENET_TRANSPORT="$PWD/.devdata/imagenet.fp16.npz"; fi
# a recipe stopped by the timeout still hands back what it finished (each stage keeps its best.pt)
# (and a snapshot every minute survives even the call's own limit)
mkdir -p "/tmp/runs/$preset"
(while sleep 60; do python3 scripts/collect_run.py "/tmp/runs/$preset" "$OUT" >/dev/null 2>&1 || true; done) &
snapshots=$!
status=0
timeout $((budget + 60)) python3 -m mien.training.recipe --preset "$preset" --teachers "$teachers" \
    --data /tmp/fer.npz --out "/tmp/runs/$preset" --device cuda --threads 8 --time-budget-s "$budget" \
    --no-export 2>&1 | tee "$OUT/log.txt" || status=$?
kill "$snapshots" 2>/dev/null || true
pkill -f "scripts/collect_run.py" 2>/dev/null || true  # a snapshot caught mid-way; the last collect rewrites it
sleep 1
python3 scripts/collect_run.py "/tmp/runs/$preset" "$OUT"
exit "$status"
