#!/usr/bin/env bash
# A single-node Slurm cluster with accounting (munge, MariaDB, slurmdbd,
# slurmctld, slurmd) on this machine, for the SLURM profile's tests.
#
# Needs root and the Debian packages slurm-wlm, slurmdbd, munge and
# mariadb-server (tests/ci_packages.sh). Idempotent: a cluster that
# already answers is left as it is. Exits non-zero, printing the daemon's log
# tail, when a daemon does not come up. stop_cluster.sh stops what this started.
#
# Settings forced by containers without usable cgroups: process tracking by
# parent pid (proctrack/linuxproc), no task plugin, accounting by /proc.
# The config must live at /etc/slurm/slurm.conf: the SLURM executor plugin's
# job step drops SLURM_CONF from the environment.
set -euo pipefail

CLUSTER=calcsig-ci
# The accounts the tests use: the user's default, and a second one that only an
# explicit --account (the profile's slurm_account) selects.
DEFAULT_ACCOUNT=calcsig-default
PROFILE_ACCOUNT=calcsig-ci
ETC=/etc/slurm
STATE=/var/lib/slurm
LOGS=/var/log/slurm
RUN=/run/slurm
DB_SOCKET=/run/mysqld/mysqld.sock
DB_PASSWORD=calcsig-ci-only

log() { printf 'start_cluster: %s\n' "$*" >&2; }
fail() {
    log "$1"
    [ -n "${2:-}" ] && [ -f "$2" ] && tail -n 30 "$2" >&2
    exit 1
}
# wait_for SECONDS COMMAND...: retry COMMAND every half second until it succeeds
wait_for() {
    local deadline=$((SECONDS + $1))
    shift
    until "$@" >/dev/null 2>&1; do
        [ "$SECONDS" -ge "$deadline" ] && return 1
        sleep 0.5
    done
}
node_idle() { [ "$(sinfo -h -N -o %t 2>/dev/null | head -n1)" = idle ]; }

[ "$(id -u)" -eq 0 ] || fail "must run as root (it writes /etc/slurm and starts system daemons)"
for daemon in munged mariadbd slurmdbd slurmctld slurmd; do
    command -v "$daemon" >/dev/null || [ -x "/usr/sbin/$daemon" ] ||
        fail "$daemon not found: install the packages with tests/ci_packages.sh"
done
export PATH="/usr/sbin:$PATH"

if scontrol ping 2>/dev/null | grep -q UP && node_idle; then
    log "a cluster is already up; leaving it as it is"
    exit 0
fi

mkdir -p "$ETC" "$STATE/slurmctld" "$STATE/slurmd" "$LOGS" "$RUN" /run/munge /run/mysqld
chown slurm:slurm "$STATE/slurmctld" "$LOGS" "$RUN"
chown munge:munge /run/munge
chown mysql:mysql /run/mysqld

# munge: authentication between the daemons and the client commands
if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
    [ -s /etc/munge/munge.key ] || mungekey --create --force
    chown munge:munge /etc/munge/munge.key && chmod 600 /etc/munge/munge.key
    runuser -u munge -- munged --pid-file=/run/munge/munged.pid || fail "munged did not start" /var/log/munge/munged.log
    wait_for 10 sh -c 'munge -n | unmunge' || fail "munge does not answer" /var/log/munge/munged.log
fi

# MariaDB on its socket only (no TCP port to collide with anything else)
if ! mysqladmin --socket="$DB_SOCKET" ping >/dev/null 2>&1; then
    setsid nohup mariadbd --user=mysql --skip-networking --socket="$DB_SOCKET" \
        --pid-file=/run/mysqld/mysqld.pid >"$LOGS/mariadb.log" 2>&1 </dev/null &
    wait_for 60 mysqladmin --socket="$DB_SOCKET" ping || fail "MariaDB did not start" "$LOGS/mariadb.log"
fi
mysql --socket="$DB_SOCKET" <<SQL
CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY '$DB_PASSWORD';
GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost';
SQL

NODE_LINE=$(slurmd -C | head -n1)
NODE_NAME=$(sed -n 's/^NodeName=\([^ ]*\).*/\1/p' <<<"$NODE_LINE")
NODE_MEMORY=$(sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p' <<<"$NODE_LINE")
# leave a tenth of the memory to the system; Slurm drains a node that reports less than configured
NODE_LINE=${NODE_LINE/RealMemory=$NODE_MEMORY/RealMemory=$((NODE_MEMORY * 9 / 10))}

cat >"$ETC/slurmdbd.conf" <<EOF
AuthType=auth/munge
DbdHost=localhost
DbdPort=6819
SlurmUser=slurm
StorageType=accounting_storage/mysql
StorageHost=localhost
StoragePort=0
StorageUser=slurm
StoragePass=$DB_PASSWORD
StorageLoc=slurm_acct_db
LogFile=$LOGS/slurmdbd.log
PidFile=$RUN/slurmdbd.pid
EOF
chown slurm:slurm "$ETC/slurmdbd.conf" && chmod 600 "$ETC/slurmdbd.conf"

cat >"$ETC/slurm.conf" <<EOF
ClusterName=$CLUSTER
SlurmctldHost=$NODE_NAME(127.0.0.1)
SlurmUser=slurm
AuthType=auth/munge
StateSaveLocation=$STATE/slurmctld
SlurmdSpoolDir=$STATE/slurmd
SlurmctldPidFile=$RUN/slurmctld.pid
SlurmdPidFile=$RUN/slurmd.pid
SlurmctldLogFile=$LOGS/slurmctld.log
SlurmdLogFile=$LOGS/slurmd.log
# no usable cgroups here: track job processes by parent pid, no task binding
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=30
# cores and memory are consumable, so jobs share the node; without a default
# memory per CPU one job would take all of the node's memory
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=1000
SchedulerType=sched/backfill
# finished jobs stay visible to squeue for 5 minutes, longer than the executor
# plugin's longest wait between status checks (180 s)
MinJobAge=300
# scancel: SIGTERM, then SIGKILL after KillWait seconds
KillWait=10
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
AccountingStoragePort=6819
# reject jobs under accounts the user does not belong to
AccountingStorageEnforce=associations
JobCompType=jobcomp/none
ReturnToService=2
$NODE_LINE NodeAddr=127.0.0.1 State=UNKNOWN
PartitionName=debug Nodes=$NODE_NAME Default=YES MaxTime=INFINITE State=UP
EOF
chmod 644 "$ETC/slurm.conf"

if ! sacctmgr -n list cluster >/dev/null 2>&1; then
    slurmdbd || fail "slurmdbd did not start" "$LOGS/slurmdbd.log"
    wait_for 30 sacctmgr -n list cluster || fail "slurmdbd does not answer" "$LOGS/slurmdbd.log"
fi
# the cluster, accounts and user must exist before slurmctld registers
sacctmgr -i add cluster "$CLUSTER" >/dev/null 2>&1 || true
sacctmgr -i add account "$DEFAULT_ACCOUNT" "$PROFILE_ACCOUNT" cluster="$CLUSTER" >/dev/null 2>&1 || true
sacctmgr -i add user "$(id -un)" account="$DEFAULT_ACCOUNT,$PROFILE_ACCOUNT" \
    defaultaccount="$DEFAULT_ACCOUNT" cluster="$CLUSTER" >/dev/null 2>&1 || true
sacctmgr -n -P list associations cluster="$CLUSTER" user="$(id -un)" format=account |
    grep -qx "$PROFILE_ACCOUNT" || fail "could not register $(id -un) under account $PROFILE_ACCOUNT in slurmdbd" "$LOGS/slurmdbd.log"

if ! scontrol ping 2>/dev/null | grep -q UP; then
    slurmctld || fail "slurmctld did not start" "$LOGS/slurmctld.log"
    wait_for 30 sh -c 'scontrol ping | grep -q UP' || fail "slurmctld does not answer" "$LOGS/slurmctld.log"
fi
if ! pgrep -F "$RUN/slurmd.pid" >/dev/null 2>&1; then
    slurmd || fail "slurmd did not start" "$LOGS/slurmd.log"
fi
wait_for 60 node_idle || fail "node $NODE_NAME is not idle: $(sinfo -h -N -o '%t %E')" "$LOGS/slurmd.log"
log "cluster $CLUSTER is up: node $NODE_NAME idle, accounts $DEFAULT_ACCOUNT (default) and $PROFILE_ACCOUNT"
