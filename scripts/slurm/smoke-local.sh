#!/bin/bash
# Opt-in smoke test on a real (one-node) Slurm: brings up munge, slurmctld and slurmd on this
# machine with a throw-away configuration under $WORK (default /tmp/samsde-slurm), submits a
# 4-task job array of a Monte Carlo study plus the dependent merge job (submit.sh), waits, and
# compares the merged result with a single run of the same configuration. Needs root (to start
# the daemons) and Debian's slurm-wlm and munge packages:
#
#   apt-get install -y slurm-wlm munge
#   cargo build --release
#   scripts/slurm/smoke-local.sh [STUDY] [CONFIG]        # default: convergence, its shipped config
#
# Stops the daemons it started on exit. Not part of `cargo test`.
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
study=${1:-convergence}
config=${2:-$repo/experiments/convergence_quadratic.toml}
work=${WORK:-/tmp/samsde-slurm}
export SDE_CHECK=${SDE_CHECK:-$repo/target/release/sde-check}
[ -x "$SDE_CHECK" ] || { echo "build first: cargo build --release ($SDE_CHECK missing)" >&2; exit 2; }
for b in munged slurmctld slurmd sbatch squeue; do
    command -v "$b" >/dev/null || { echo "$b not found: apt-get install -y slurm-wlm munge" >&2; exit 2; }
done

rm -rf "$work"; mkdir -p "$work"/{state,spool,log,run,munge} "$work/out"
host=$(hostname -s)
cpus=$(nproc)
mem=$(awk '/MemTotal/ {print int($2/1024) - 512}' /proc/meminfo)

# munge: a fresh key and a private socket, so nothing of the machine's own munge is touched.
dd if=/dev/urandom bs=1 count=1024 of="$work/munge/munge.key" 2>/dev/null
chmod 400 "$work/munge/munge.key"
sock=$work/munge/munge.socket
munged --force --key-file="$work/munge/munge.key" --socket="$sock" \
    --pid-file="$work/munge/munged.pid" --log-file="$work/log/munged.log" \
    --seed-file="$work/munge/seed"
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    [ -f "$work/munge/munged.pid" ] && kill "$(cat "$work/munge/munged.pid")" 2>/dev/null || true
}
trap cleanup EXIT

cat > "$work/slurm.conf" <<CONF
ClusterName=samsde-smoke
SlurmctldHost=$host
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$sock
CryptoType=crypto/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
ReturnToService=2
SlurmctldPidFile=$work/run/slurmctld.pid
SlurmdPidFile=$work/run/slurmd.pid
SlurmctldPort=16817
SlurmdPort=16818
StateSaveLocation=$work/state
SlurmdSpoolDir=$work/spool
SlurmctldLogFile=$work/log/slurmctld.log
SlurmdLogFile=$work/log/slurmd.log
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
NodeName=$host CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=smoke Nodes=$host Default=YES MaxTime=INFINITE State=UP OverSubscribe=YES
CONF
export SLURM_CONF=$work/slurm.conf
slurmctld -D -f "$SLURM_CONF" > "$work/log/slurmctld.out" 2>&1 & pids+=($!)
slurmd -D -f "$SLURM_CONF" > "$work/log/slurmd.out" 2>&1 & pids+=($!)
for _ in $(seq 60); do
    sinfo -h -o %T 2>/dev/null | grep -qE '^(idle|mixed|allocated)' && break
    sleep 1
done
sinfo
sinfo -h -o %T | grep -qE '^(idle|mixed|allocated)' || {
    echo "the node did not come up; logs in $work/log" >&2; exit 1; }

t0=$(date +%s)
"$repo/scripts/slurm/submit.sh" "$study" "$config" "$work/out" 4 --cpus-per-task=1 | tee "$work/submit.txt"
merge_job=$(awk '{print $8}' "$work/submit.txt")
while squeue -h | grep -q .; do sleep 2; done
echo "array + merge: $(( $(date +%s) - t0 )) s wall"
sacct_state=$(scontrol show job "$merge_job" 2>/dev/null | grep -o 'JobState=[A-Z]*' || true)
echo "merge job $merge_job: ${sacct_state:-(no longer known to slurmctld)}"
ls -l "$work/out/shards" "$work/out/merged"

# The same configuration in one process, then compare (JSON up to wall time and threads).
"$SDE_CHECK" "$study" "$config" --out "$work/out/single" --quiet --threads 2 || [ $? -eq 1 ]
python3 - "$work/out/single" "$work/out/merged" <<'PY'
import json, pathlib, sys
a, b = map(pathlib.Path, sys.argv[1:])
def strip(v):
    if isinstance(v, dict):
        return {k: strip(x) for k, x in v.items() if k not in ("elapsed_s", "threads")}
    if isinstance(v, list):
        return [strip(x) for x in v]
    return v
names = sorted(p.name for p in a.iterdir())
assert names == sorted(p.name for p in b.iterdir()), "different files"
for n in names:
    if n.endswith(".json"):
        same = strip(json.loads((a / n).read_text())) == strip(json.loads((b / n).read_text()))
    else:
        same = (a / n).read_bytes() == (b / n).read_bytes()
    print(f"{n}: {'identical' if same else 'DIFFERS'}")
    assert same, n
print("merged Slurm result == single run")
PY
