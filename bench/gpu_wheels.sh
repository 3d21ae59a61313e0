#!/usr/bin/env bash
# The wheels bench/gpu_check.sh needs on a bare GPU machine (Python 3.12, no network, torch / transformers /
# accelerate / pandas / pyarrow present): datasets and the two small packages it adds, and captum for the
# explanation timing. Run here, where pip reaches the registry, from the repo root; then carry `.whl` to the GPU
# machine, where gpu_check.sh installs them before it starts. About 2 MB.
#   bash bench/gpu_wheels.sh
set -euo pipefail
cd "$(dirname "$0")/.."
grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo '/.whl/' >> .git/info/exclude
rm -rf .whl
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
  -d .whl datasets==5.2.0 dill==0.4.1 multiprocess==0.70.19 captum==0.9.0
ls -1 .whl
du -sh .whl
