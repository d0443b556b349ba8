#!/usr/bin/env bash
# up.sh - bring up a throw-away single-machine Ceph for FOOT's tests (Debian bookworm
# packages, Ceph 16.2 Pacific) without systemd and without block devices.
# Started from /work/shared/reference/ceph-single-node-up.sh; used by the pytest fixture
# `ceph` (testenv/foot_testenv/ceph.py), which picks free ports and a run folder.
#   1 mon, 1 mgr (dashboard, no TLS), N memstore OSDs, optional MDS + CephFS
#   volume, optional radosgw (beast).  Everything on 127.0.0.1, all state in $RUN.
# Idempotent: if the cluster in $RUN is already up and answering, it exits 0;
# otherwise it tears down whatever is left there and bootstraps from nothing.
# After success, "source $RUN/env" gives CEPH_CONF, DASHBOARD_URL, RGW_URL, ...
set -euo pipefail

BASE=${FOOT_CEPH_BASE:-$PWD/.ceph}
RUN=${FOOT_CEPH_RUN:-$BASE/run}
SELF_DIR=$(cd "$(dirname "$0")" && pwd)
NUM_OSD=${FOOT_CEPH_OSDS:-1}
WITH_MDS=${FOOT_CEPH_MDS:-1}
WITH_RGW=${FOOT_CEPH_RGW:-1}
MON_V2_PORT=${FOOT_CEPH_MON_V2_PORT:-13300}
MON_V1_PORT=${FOOT_CEPH_MON_V1_PORT:-16789}
PORT_MIN=${FOOT_CEPH_PORT_MIN:-16800}
PORT_MAX=${FOOT_CEPH_PORT_MAX:-16999}
DASH_PORT=${FOOT_CEPH_DASHBOARD_PORT:-18080}
RGW_PORT=${FOOT_CEPH_RGW_PORT:-18000}
DASH_USER=${FOOT_CEPH_DASHBOARD_USER:-admin}
DASH_PASS=${FOOT_CEPH_DASHBOARD_PASS:-Proto-Passw0rd-1}
OBJECTSTORE=${FOOT_CEPH_OBJECTSTORE:-memstore}  # or bluestore (sparse file $RUN/osd/ceph-N/block)
OSD_BYTES=${FOOT_CEPH_OSD_BYTES:-2147483648}   # "device" size per OSD
TIMEOUT=${FOOT_CEPH_TIMEOUT:-120}
MGR_DISABLED=${FOOT_CEPH_MGR_DISABLED-alerts,diskprediction_local,influx,insights,iostat,localpool,mirroring,nfs,osd_perf_query,osd_support,prometheus,restful,selftest,snap_schedule,stats,telegraf,test_orchestrator,zabbix}

CONF=$RUN/ceph.conf
KEYRING=$RUN/keyring
export CEPH_CONF=$CONF CEPH_KEYRING=$KEYRING
T0=$EPOCHREALTIME
log() { printf '[up %6.2fs] %s\n' "$(awk "BEGIN{print $EPOCHREALTIME - $T0}")" "$*"; }
ceph() { command ceph -c "$CONF" -k "$KEYRING" --connect-timeout 10 "$@"; }

wait_for() {  # wait_for <description> <command...>
  local what=$1; shift
  local deadline=$(( $(date +%s) + TIMEOUT ))
  until "$@" >/dev/null 2>&1; do
    if (( $(date +%s) > deadline )); then
      echo "up.sh: timed out waiting for $what" >&2
      tail -n 20 "$RUN"/log/*.log >&2 || true
      exit 1
    fi
    sleep 0.5
  done
}

# ---- idempotency -----------------------------------------------------------
all_alive() {
  local f n=0
  for f in "$RUN"/pid/*.pid; do
    [ -e "$f" ] || return 1
    # a live daemon of ours has our conf on its command line (zombies have none)
    tr '\0' ' ' 2>/dev/null < "/proc/$(cat "$f")/cmdline" | grep -q -- "$CONF" || return 1
    n=$((n + 1))
  done
  [ "$n" -gt 0 ]
}
if [ -f "$RUN/env" ] && all_alive && ceph health >/dev/null 2>&1; then
  log "cluster already up ($(ceph health))"; exit 0
fi
if [ -d "$RUN" ]; then
  log "stale state in $RUN: tearing down"
  FOOT_CEPH_RUN=$RUN bash "$SELF_DIR/down.sh" >/dev/null
fi
mkdir -p "$RUN"/{pid,log,asok,crash,mon,mgr,osd,mds,rgw}

# ---- config ------------------------------------------------------------------
FSID=$(uuidgen)
cat > "$CONF" <<EOF
[global]
fsid = $FSID
mon host = [v2:127.0.0.1:$MON_V2_PORT,v1:127.0.0.1:$MON_V1_PORT]
mon initial members = a
public addr = 127.0.0.1
cluster addr = 127.0.0.1
ms bind ipv6 = false
ms bind port min = $PORT_MIN
ms bind port max = $PORT_MAX
keyring = $KEYRING
run dir = $RUN
pid file = $RUN/pid/\$name.pid
crash dir = $RUN/crash
auth allow insecure global id reclaim = false
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
mon allow pool size one = true
mon allow pool delete = true
mon warn on pool no redundancy = false
mon data avail warn = 1
mon data avail crit = 1
mon max pg per osd = 1000

[mon]
admin socket = $RUN/asok/\$name.asok
log file = $RUN/log/\$name.log
mon data = $RUN/mon/ceph-\$id
mon cluster log file = $RUN/log/cluster.log
mgr initial modules = dashboard

[mgr]
# modules we never use are not even imported: saves seconds of mgr start-up
mgr disabled modules = $MGR_DISABLED
mgr stats period = 1
# \$pid: the dashboard runs "radosgw-admin -n mgr.x", which must not clash
admin socket = $RUN/asok/\$name.\$pid.asok
log file = $RUN/log/\$name.log
mgr data = $RUN/mgr/ceph-\$id

[osd]
admin socket = $RUN/asok/\$name.asok
log file = $RUN/log/\$name.log
osd data = $RUN/osd/ceph-\$id
osd objectstore = $OBJECTSTORE
memstore device bytes = $OSD_BYTES
bluestore block create = true
bluestore block size = $OSD_BYTES
bluestore fsck on mkfs = false
osd memory target = 1073741824

[mds]
admin socket = $RUN/asok/\$name.asok
log file = $RUN/log/\$name.log
mds data = $RUN/mds/ceph-\$id

[client.rgw.a]
admin socket = $RUN/asok/\$name.asok
log file = $RUN/log/\$name.log
rgw data = $RUN/rgw/ceph-a
rgw frontends = beast endpoint=127.0.0.1:$RGW_PORT
EOF

# ---- keys (all imported into the mon's auth db by mkfs) ---------------------
key() { ceph-authtool "$KEYRING" -g -n "$@" >/dev/null; }
ceph-authtool --create-keyring "$KEYRING" -g -n mon. --cap mon 'allow *' >/dev/null
key client.admin --cap mon 'allow *' --cap osd 'allow *' --cap mds 'allow *' --cap mgr 'allow *'
key mgr.x --cap mon 'allow profile mgr' --cap osd 'allow *' --cap mds 'allow *'
for ((i = 0; i < NUM_OSD; i++)); do
  key osd.$i --cap mon 'allow profile osd' --cap mgr 'allow profile osd' --cap osd 'allow *'
done
key mds.a --cap mon 'allow profile mds' --cap osd 'allow rw tag cephfs *=*' --cap mds 'allow' --cap mgr 'allow profile mds'
key client.rgw.a --cap mon 'allow rw' --cap osd 'allow rwx' --cap mgr 'allow rw'

# ---- mon ---------------------------------------------------------------------
monmaptool --create --fsid "$FSID" --addv a "[v2:127.0.0.1:$MON_V2_PORT,v1:127.0.0.1:$MON_V1_PORT]" \
  "$RUN/monmap" >/dev/null
ceph-mon -c "$CONF" --mkfs -i a --monmap "$RUN/monmap" --keyring "$KEYRING"
ceph-mon -c "$CONF" -i a >>"$RUN/log/daemons.out" 2>&1
log "mon started"
wait_for "mon quorum" ceph mon stat

# dashboard settings must exist before the mgr loads the module
printf '%s\n' \
  "config set mgr mgr/dashboard/ssl false --force" \
  "config set mgr mgr/dashboard/server_addr 127.0.0.1 --force" \
  "config set mgr mgr/dashboard/server_port $DASH_PORT --force" \
  | ceph >/dev/null
ceph-mgr -c "$CONF" -i x >>"$RUN/log/daemons.out" 2>&1
log "mgr started"

# ---- OSDs (memstore: data lives in the OSD's RAM; bluestore: sparse file) ----
for ((i = 0; i < NUM_OSD; i++)); do
  uuid=$(uuidgen)
  id=$(ceph osd new "$uuid" "$i")
  [ "$id" = "$i" ] || { echo "expected osd id $i, got $id" >&2; exit 1; }
  mkdir -p "$RUN/osd/ceph-$i"
  ceph-osd -c "$CONF" -i "$i" --mkfs --osd-uuid "$uuid" >>"$RUN/log/osd-mkfs.log" 2>&1
  ceph-osd -c "$CONF" -i "$i" >>"$RUN/log/daemons.out" 2>&1
done
log "$NUM_OSD osd(s) started"

if [ "$WITH_MDS" = 1 ]; then
  mkdir -p "$RUN/mds/ceph-a"; ceph-mds -c "$CONF" -i a >>"$RUN/log/daemons.out" 2>&1; log "mds started"
fi
if [ "$WITH_RGW" = 1 ]; then
  mkdir -p "$RUN/rgw/ceph-a"; radosgw -c "$CONF" -n client.rgw.a >>"$RUN/log/daemons.out" 2>&1; log "radosgw started"
fi

wait_for "osds up" bash -c "[ \"\$(ceph osd stat -f json | python3 -c 'import json,sys; print(json.load(sys.stdin)[\"num_up_osds\"])')\" = $NUM_OSD ]"
log "osds up"

if [ "$WITH_MDS" = 1 ]; then
  wait_for "mgr volumes module" ceph fs volume ls
  ceph fs volume create cephfs >/dev/null 2>"$RUN/log/fs-volume-create.err"
  ceph fs set cephfs standby_count_wanted 0
  log "cephfs volume created"
fi

# ---- dashboard ---------------------------------------------------------------
wait_for "dashboard url" bash -c "ceph mgr services | grep -q dashboard"
printf '%s' "$DASH_PASS" > "$RUN/dashboard.pass"
wait_for "dashboard user" ceph dashboard ac-user-create "$DASH_USER" -i "$RUN/dashboard.pass" administrator
DASH_URL=$(ceph mgr services | python3 -c 'import json,sys; print(json.load(sys.stdin)["dashboard"].rstrip("/"))')
wait_for "dashboard http" curl -sf "$DASH_URL/" -o /dev/null
log "dashboard ready at $DASH_URL"

if [ "$WITH_RGW" = 1 ]; then
  wait_for "rgw http" curl -sf "http://127.0.0.1:$RGW_PORT/" -o /dev/null
  wait_for "dashboard rgw credentials" ceph dashboard set-rgw-credentials
  log "rgw ready"
fi

ready() {  # HEALTH_OK and every PG active+clean
  ceph status -f json | python3 -c '
import json, sys
s = json.load(sys.stdin); pm = s["pgmap"]
clean = sum(x["count"] for x in pm.get("pgs_by_state", []) if x["state_name"] == "active+clean")
sys.exit(0 if s["health"]["status"] == "HEALTH_OK" and clean == pm["num_pgs"] else 1)'
}
wait_for "HEALTH_OK + all PGs active+clean" ready
log "HEALTH_OK, all PGs active+clean"

cat > "$RUN/env" <<EOF
export CEPH_CONF=$CONF
export CEPH_KEYRING=$KEYRING
export CEPH_FSID=$FSID
export CEPH_MON_HOST='[v2:127.0.0.1:$MON_V2_PORT,v1:127.0.0.1:$MON_V1_PORT]'
export CEPH_DASHBOARD_URL=$DASH_URL
export CEPH_DASHBOARD_USER=$DASH_USER
export CEPH_DASHBOARD_PASS='$DASH_PASS'
export CEPH_RGW_URL=$( [ "$WITH_RGW" = 1 ] && echo "http://127.0.0.1:$RGW_PORT" )
EOF
log "done: source $RUN/env"
