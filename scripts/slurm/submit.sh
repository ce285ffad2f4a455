#!/bin/bash
# Submit a sharded sde-check run to Slurm: an N-task job array of shards, then a merge job that
# starts when every shard succeeded.
#
#   scripts/slurm/submit.sh STUDY CONFIG OUTDIR N [extra sbatch options…]
#
# Set SDE_CHECK to the sde-check binary if it is not on PATH on the compute nodes; OUTDIR must
# be on a file system the nodes share. Prints the two job ids.
set -euo pipefail
if [ $# -lt 4 ]; then
    echo "usage: $0 STUDY CONFIG OUTDIR N [sbatch options…]" >&2
    exit 2
fi
study=$1 config=$2 out=$3 n=$4
shift 4
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$out/shards"
config=$(cd "$(dirname "$config")" && pwd)/$(basename "$config")
out=$(cd "$out" && pwd)
export SHARDS=$n
array=$(sbatch --parsable --export=ALL --chdir="$out" --array=0-$((n - 1)) "$@" \
    "$here/array.sbatch" "$study" "$config" "$out")
merge=$(sbatch --parsable --export=ALL --chdir="$out" --dependency=afterok:"${array%%;*}" "$@" \
    "$here/merge.sbatch" "$out")
echo "array job $array (shards 1..$n), merge job $merge -> $out/merged"
