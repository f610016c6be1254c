#!/bin/sh
# Benchmarks 1 and 2 on a GPU host, through Keras's JAX backend (INFERENCE_RUNTIME=jax).
#
#   BROKER=redis://127.0.0.1:6379/0 sh bench/gpu.sh OUT_DIR     # BROKER=embedded: kombu's SQLite transport
#
# Needs the worker's requirements with jax[cuda] instead of tensorflow-cpu. Each step runs even when an
# earlier one failed; results go to OUT_DIR (gpu-model-*.md, gpu-worker.md) and are printed.
out=${1:-docs}
photos=${PHOTOS:-1200}
mkdir -p "$out"
export PYTHONUNBUFFERED=1 KERAS_BACKEND=jax
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm --format=csv
python3 -c "import jax, keras; print('jax', jax.__version__, jax.devices(), 'keras', keras.__version__)"
python3 -m ml bench --runtimes jax,keras --batch 64 --seconds 6 --doc "$out/gpu-model-64.md"
python3 -m ml bench --runtimes jax --batch 256 --seconds 6 --doc "$out/gpu-model-256.md"
if [ "${BROKER:-embedded}" = embedded ]; then where="--embedded"; else where="--database sqlite --broker $BROKER"; fi
# shellcheck disable=SC2086
python3 bench/worker_throughput.py --gpu $where --photos "$photos" --out "$out/gpu-worker.md"
cat "$out"/gpu-*.md
