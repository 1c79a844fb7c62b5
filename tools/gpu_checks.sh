#!/usr/bin/env bash
# The checks that need a CUDA device, as run on the GPU machine lent to a session (README, "GPU").
# That machine has torch, Triton, transformers and the build tools but no network: Liger-Kernel and
# cut-cross-entropy travel as wheels in .whl/ (optional), and models are configs with random weights.
#
#   bash tools/gpu_checks.sh OUT setup      # build passkcore (editable), install .whl/*.whl
#   bash tools/gpu_checks.sh OUT kernels    # compiled-kernel tests + the head against its peers
#   bash tools/gpu_checks.sh OUT scoring CONFIG...   # fused vs full-logits scoring per model config
set -uo pipefail
out=${1:?usage: gpu_checks.sh OUT setup|kernels|scoring [CONFIG...]}
part=${2:?usage: gpu_checks.sh OUT setup|kernels|scoring [CONFIG...]}
shift 2
mkdir -p "$out"
export PYTHONUNBUFFERED=1 PYTHONPATH=/tmp/site
pytest=(python3 -m pytest -p no:cacheprovider -q -rA -s)
case $part in
  setup)
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
    if compgen -G ".whl/*.whl" >/dev/null; then
      python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
    fi
    python3 -m pip install -q --no-build-isolation --no-deps -e . || exit 1
    python3 tools/strip_editable_paths.py
    python3 -c "import torch, triton, transformers, passkcore; print('torch', torch.__version__, 'triton', triton.__version__, 'transformers', transformers.__version__, torch.cuda.get_device_name())"
    ;;
  kernels)
    "${pytest[@]}" -m gpu tests/kernels/test_logprob_gpu.py tests/test_varlen.py 2>&1 | tee "$out/kernel_tests.log"
    "${pytest[@]}" benches/test_kernels_gpu.py -k head 2>&1 | tee "$out/kernel_bench.log"
    ;;
  scoring)
    models=()
    for config in "$@"; do
      dir=/tmp/models/$(basename "$config" .json)
      test -f "$dir/config.json" || python3 tools/random_weights_model.py "$config" "$dir" || exit 1
      models+=("$dir")
    done
    PASSK_BENCH_GPU_MODELS=$(IFS=,; echo "${models[*]}") \
      "${pytest[@]}" benches/test_scoring_gpu.py -k fused_vs_full 2>&1 | tee "$out/scoring_bench_$(date +%s).log"
    ;;
  *) echo "unknown part $part" >&2; exit 2 ;;
esac
