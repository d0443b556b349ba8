#!/usr/bin/env bash
# down.sh - (FOOT test environment) stop the daemons that up.sh started (by the PIDs in $RUN/pid) and
# delete all cluster state.  Safe to run when nothing is up.
set -uo pipefail
BASE=${FOOT_CEPH_BASE:-$PWD/.ceph}
RUN=${FOOT_CEPH_RUN:-$BASE/run}
GRACE=${FOOT_CEPH_DOWN_GRACE:-1}   # seconds to wait for SIGTERM before SIGKILL

ours() { tr '\0' ' ' 2>/dev/null < "/proc/$1/cmdline" | grep -q -- "$RUN/ceph.conf"; }
pids=()
for f in "$RUN"/pid/*.pid; do
  [ -e "$f" ] || continue
  p=$(cat "$f")
  # only signal it if it really is one of our ceph daemons using our config
  if [ -n "$p" ] && ours "$p"; then
    kill -TERM "$p" 2>/dev/null && pids+=("$p")
  fi
done
alive=("${pids[@]}")
for _ in $(seq 1 $((GRACE * 5))); do  # state is thrown away, so no need to wait long
  alive=()
  for p in "${pids[@]}"; do ours "$p" && alive+=("$p"); done
  [ ${#alive[@]} -eq 0 ] && break
  sleep 0.2
done
for p in "${alive[@]:-}"; do [ -n "$p" ] && kill -KILL "$p" 2>/dev/null; done
for _ in $(seq 1 50); do             # up to 5 s for the kernel to reap them
  gone=1; for p in "${alive[@]:-}"; do [ -n "$p" ] && ours "$p" && gone=0; done
  [ $gone = 1 ] && break; sleep 0.1
done
rm -rf "$RUN"
echo "down: stopped ${#pids[@]} daemon(s), removed $RUN"
