#!/usr/bin/env bash
# GPU check, one prepared command (about 6 minutes on an H100/H200; SMOKE=1 runs a tiny version anywhere):
#   1. the default-shaped job through sentitune (3,500 training reviews of a DistilBERT-base-sized model built from
#      its config, random weights, no download; 256 tokens; 3 epochs): device, precision, TF32, the phase table
#      from Start to saved model, peak GPU memory, then predict / explain / export latencies (bench/gpu_job.py);
#   2. the plain fp32 recipe padded to 256 tokens beside sentitune's pipeline, optimizer steps timed alone, after a
#      warm-up (bench/train_throughput.py; one seed: the side-by-side ratio, not its spread);
#   3. mixed-precision test scores against fp32 `evaluate` of the same model (bench/precision_check.py).
# On a bare machine without `datasets` and captum, the wheels in .whl/ (made here by bench/gpu_wheels.sh, then carried)
# are installed first.
#   bash bench/gpu_check.sh            # on the GPU machine, from the repo root
#   SMOKE=1 bash bench/gpu_check.sh    # a tiny version that runs anywhere, to check the script
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1
if [ -d .whl ] && ! python3 -c "import datasets" 2>/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
  export PYTHONPATH="/tmp/site${PYTHONPATH:+:$PYTHONPATH}"
fi
export CUDA_VISIBLE_DEVICES="${CUDA_VISIBLE_DEVICES:-0}"  # one GPU, as one sentitune process uses
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
if [ "${SMOKE:-0}" = 1 ]; then
  out=$(python3 bench/synthetic.py "$work" --rows 300 --small)
  samples=140; epochs=1; length=64
else
  python3 -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 'no CUDA GPU: run this on a GPU machine (or SMOKE=1)')"
  out=$(python3 bench/synthetic.py "$work" --rows 5000)
  samples=3500; epochs=3; length=256
fi
model=$(echo "$out" | tail -n 2 | sed -n 1p)
data=$(echo "$out" | tail -n 1)
python3 bench/gpu_job.py --model "$model" --data "$data" --samples "$samples" --epochs "$epochs" --max-length "$length"
python3 bench/train_throughput.py --model "$model" --data "$data" --samples "$samples" --epochs "$epochs" \
  --max-length "$length" --seeds 42
python3 bench/precision_check.py --model "$model" --data "$data" --samples "$samples" --max-length "$length"
