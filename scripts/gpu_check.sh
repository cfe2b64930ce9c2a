#!/usr/bin/env bash
# The GPU check of reproducible execution (one call on a lent CUDA machine, under 8 minutes):
#   1. install the wheels carried in .whl/ (`make gpu-wheels` here), beside the machine's torch;
#   2. the CUDA tests (tests/repro/test_cuda.py: every covered operator and every built-in model's
#      training, CPU vs CUDA, bit for bit);
#   3. scripts/gpu_figures.py: CPU vs CUDA roots per built-in model in reproducible mode,
#      reproducible/native step ratios on the GPU, the honest solver's per-checkpoint overhead.
# Results go to $OUT (default /tmp/pinpoint-gpu): cuda-tests.txt and gpu.json.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-/tmp/pinpoint-gpu}"
mkdir -p "$OUT"
PY="${PYTHON:-python3}"
export PYTHONPATH="$PWD" PYTHONDONTWRITEBYTECODE=1 CUBLAS_WORKSPACE_CONFIG=:4096:8
if [ -d .whl ]; then
  "$PY" -m pip install -q --no-index --find-links .whl -r scripts/gpu-requirements.txt
fi
"$PY" -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), \
  torch.cuda.get_device_name(0) if torch.cuda.is_available() else '')" | tee "$OUT/device.txt"
status=0
"$PY" -m pytest -q -p no:cacheprovider -p no:randomly tests/repro/test_cuda.py 2>&1 | tee "$OUT/cuda-tests.txt" \
  || status=$?
"$PY" -m scripts.gpu_figures "$OUT/gpu.json" || status=$?
exit "$status"
