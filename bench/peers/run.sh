#!/usr/bin/env bash
# Runs sde-check bench and its peers (NumPy, numba serial and prange, JAX, diffrax, torchsde)
# on the same five problems, RUNS times each, at 1 and 2 threads, and prints the table of
# BENCHMARKS.md (medians). Not run by CI. Needs `bash bench/peers/setup.sh` once.
#
#   bash bench/peers/run.sh [RUNS] [PATHS] [STEPS]      (defaults 3, 10000, 1000)
#
# Environment: TOOLS (default "numpy numba numba-prange jax diffrax torchsde") picks the peers,
# THREADS (default "1 2") the thread counts; e.g. TOOLS="numpy numba" THREADS=1 for the fastest
# peers only.
#
# Results (one JSON object per line) go to bench/peers/results/<date>.jsonl.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
runs="${1:-3}"; paths="${2:-10000}"; steps="${3:-1000}"
tools=" ${TOOLS:-numpy numba numba-prange jax diffrax torchsde} "
threads="${THREADS:-1 2}"
want() { [[ "$tools" == *" $1 "* ]]; }
mkdir -p "$here/results"
out="$here/results/$(date -u +%Y%m%dT%H%M%SZ).jsonl"
data="$here/results/problems-$steps.json"

cd "$root"
cargo build --release --quiet
cargo run --release --quiet --example bench_problems -- "$steps" > "$data"
venv="$here/.venv/bin/python"
sys_py=/usr/bin/python3
one_thread=(env OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1)
common=(--data "$data" --paths "$paths" --steps "$steps" --out "$out")

echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2) · $(nproc) cores · load $(cut -d' ' -f1-3 /proc/loadavg)" | tee "$out.txt"
for r in $(seq "$runs"); do
  for t in $threads; do
    ./target/release/sde-check bench --paths "$paths" --steps "$steps" --threads "$t" --json \
      | "$venv" "$here/engine_rows.py" --run "$r" >> "$out"
    if [ "$t" = 1 ]; then thr=("${one_thread[@]}"); else thr=(env OMP_NUM_THREADS=2 OPENBLAS_NUM_THREADS=2); fi
    if want numpy; then (cd "$here" && "${thr[@]}" "$venv" numpy_peer.py "${common[@]}" --threads "$t"); fi
    if want numba; then (cd "$here" && NUMBA_NUM_THREADS="$t" "$venv" numba_peer.py "${common[@]}" --threads "$t"); fi
    if want numba-prange; then (cd "$here" && NUMBA_NUM_THREADS="$t" "$venv" numba_peer.py "${common[@]}" --threads "$t" --variant prange); fi
    if want jax; then (cd "$here" && "$venv" jax_peer.py "${common[@]}" --threads "$t"); fi
    if want diffrax; then (cd "$here" && "$venv" diffrax_peer.py "${common[@]}" --threads "$t"); fi
    if want torchsde; then (cd "$here" && "${thr[@]}" "$sys_py" torchsde_peer.py "${common[@]}" --threads "$t"); fi
  done
done 2>&1 | tee -a "$out.txt"
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$out.txt"
"$venv" "$here/summarize.py" "$out"
