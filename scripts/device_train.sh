#!/usr/bin/env bash
# One training call on a lent GPU machine (see docs/training.md, "Training on a lent GPU machine").
#
#   here:    python scripts/ferplus_pack.py pack ../shared/data/ferplus/fer2013_ferplus.npz .devdata/ferplus.pack.npz
#   device:  bash scripts/device_train.sh TEACHERS BUDGET_S      (carry .devdata; $OUT is set there)
#   here:    extract $OUT/run.tar.gz, then export, package and evaluate the student on the CPU
#
# The recipe gets BUDGET_S seconds (probe, teachers, student); the whole call needs about 40 s
# more (unpacking the data, collecting the run), so pick BUDGET_S at least 60 s under the call's
# time limit.
set -euo pipefail
teachers=${1:-4}
budget=${2:-500}
: "${OUT:?OUT must name the folder whose files come back}"
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD/src"
(nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || echo "no nvidia-smi") | tee "$OUT/gpu.txt"
python3 scripts/ferplus_pack.py unpack .devdata/ferplus.pack.npz /tmp/fer.npz
timeout $((budget + 60)) python3 -m mien.training.recipe --preset gpu --teachers "$teachers" \
    --data /tmp/fer.npz --out /tmp/runs/gpu --device cuda --threads 8 --time-budget-s "$budget" \
    --no-export 2>&1 | tee "$OUT/log.txt"
python3 scripts/collect_run.py /tmp/runs/gpu "$OUT"
