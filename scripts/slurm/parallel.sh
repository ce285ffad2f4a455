#!/bin/bash
# The same on one workstation with GNU parallel: N shards, J at a time, then the merge.
#
#   scripts/slurm/parallel.sh STUDY CONFIG OUTDIR N [J]
#
# Each shard gets the cores divided by J. An interrupted run can be continued: shards whose
# file already exists are skipped (a shard file is written atomically, so it is complete).
set -euo pipefail
if [ $# -lt 4 ]; then
    echo "usage: $0 STUDY CONFIG OUTDIR N [J]" >&2
    exit 2
fi
study=$1 config=$2 out=$3 n=$4 j=${5:-2}
bin=${SDE_CHECK:-sde-check}
threads=$(( $(nproc) / j )); [ "$threads" -ge 1 ] || threads=1
mkdir -p "$out/shards"
seq 1 "$n" | parallel --jobs "$j" --halt now,fail=1 \
    "[ -e '$out/shards/$study.shard-{}-of-$n.bin' ] || '$bin' '$study' '$config' --shard {}/$n --out '$out/shards' --threads $threads --quiet"
"$bin" merge "$out/shards" --out "$out/merged" || [ $? -eq 1 ]
