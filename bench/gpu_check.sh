#!/usr/bin/env bash
# GPU check (only on a machine with a CUDA GPU): DistilBERT-base-sized model from its config (random
# weights, no download), synthetic reviews with Amazon-like token lengths, 3,500 training samples,
# 3 epochs, batch 16: the plain fp32 recipe padded to 256 tokens vs sentitune's pipeline, 3 seeds, after a
# warm-up run, on GPU 0 only, timing the optimizer steps alone (no evaluation or checkpoint saves); then
# mixed-precision test scores against fp32 `evaluate` on the same model.
#   bash bench/gpu_check.sh            # on the GPU machine, from the repo root
#   SMOKE=1 bash bench/gpu_check.sh    # a tiny version that runs anywhere, to check the script
set -euo pipefail
cd "$(dirname "$0")/.."
export CUDA_VISIBLE_DEVICES="${CUDA_VISIBLE_DEVICES:-0}"  # one GPU, as one sentitune process uses
work=$(mktemp -d)
if [ "${SMOKE:-0}" = 1 ]; then
  out=$(python bench/synthetic.py "$work" --rows 300 --small)
  samples=140; epochs=1; seeds=42
else
  python -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 'no CUDA GPU: run this on a GPU machine (or SMOKE=1)')"
  out=$(python bench/synthetic.py "$work" --rows 5000)
  samples=3500; epochs=3; seeds=42,1,2
fi
model=$(echo "$out" | tail -n 2 | sed -n 1p)
data=$(echo "$out" | tail -n 1)
python -c "import torch; print('GPU:', torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'none (smoke run)')"
python bench/train_throughput.py --model "$model" --data "$data" --samples "$samples" --epochs "$epochs" \
  --max-length 256 --seeds "$seeds"
python bench/precision_check.py --model "$model" --data "$data" --samples "$samples" --max-length 256
rm -rf "$work"
