#!/usr/bin/env bash
# Issue 7's whole device check as one command, sized to a 15-minute device lease (about 6
# minutes of work after the machine starts): the GPU test set, then benchmarks/gpu.py.
#
#   here, once:           bash benchmarks/gpu_session.sh fetch    (Dask wheels into .whl/)
#   on the GPU machine:   bash benchmarks/gpu_session.sh          (carry .whl; results in $OUT)
#
# The device image has numba + numba-cuda, CuPy, torch with CUDA, JAX and diffrax but no Dask
# and no py-pde; the wheels in .whl/ (git-ignored through .git/info/exclude) bring
# dask/distributed for the Dask-on-GPU-workers test, which skips without them, and py-pde (with
# tqdm, sympy, mpmath: what its import and its PDE class need) for the porous-medium peer row of
# benchmarks/gpu.py, which says "py-pde is not installed" without them.  Writes env.txt, gpu_tests.log,
# gpu_bench.log and gpu_results.json under $OUT (./gpu-out when OUT is unset).
set -u -o pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}

if [ "${1:-}" = "fetch" ]; then
  mkdir -p .git/info .whl
  grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo '/.whl/' >> .git/info/exclude
  exec "$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
    --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 -d .whl dask==2026.8.0 distributed==2026.8.0 partd==1.4.2 \
    locket==1.0.0 tblib==3.2.2 zict==3.0.0 tornado==6.6.1 importlib_metadata==10.2.0 \
    py-pde==0.59.0 tqdm==4.70.1 sympy==1.14.0 mpmath==1.3.0
fi

OUT=${OUT:-$PWD/gpu-out}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
if compgen -G ".whl/*.whl" >/dev/null; then
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl && export PYTHONPATH=$PYTHONPATH:/tmp/site
fi
# the pytest plugin (fpgen_rng, fpgen_backend fixtures) registers through an entry point
"$PY" -m pip install -q --no-index --no-deps --no-build-isolation -e . >"$OUT/install.log" 2>&1 \
  || echo "editable install failed (install.log): fpgen is imported from PYTHONPATH"

{
  date -u
  nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm,clocks.max.mem \
    --format=csv 2>&1
  "$PY" -c "import fpgen; print(fpgen.backends())"
  "$PY" -m pip list 2>/dev/null | grep -i -E '^(numba|numba-cuda|cupy-cuda1.x|torch|jax|diffrax|dask|distributed|numpy|scipy) '
} 2>&1 | tee "$OUT/env.txt"

echo "== GPU tests"
timeout 270 "$PY" -m pytest -q -rs -n 4 -p no:cacheprovider tests/test_gpu.py \
  tests/test_gpu_grid.py tests/test_gpu_ptx.py tests/test_gradient_flow_cuda.py 2>&1 \
  | tee "$OUT/gpu_tests.log"
tests_rc=$?
echo "== benchmarks/gpu.py"
timeout 210 "$PY" benchmarks/gpu.py --json "$OUT/gpu_results.json" 2>&1 | tee "$OUT/gpu_bench.log"
bench_rc=$?
echo "tests exit $tests_rc, benchmark exit $bench_rc"
[ "$tests_rc" = 0 ] && [ "$bench_rc" = 0 ]
