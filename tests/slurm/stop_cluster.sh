#!/usr/bin/env bash
# Stop the daemons start_cluster.sh started, by their pid files, newest first.
# Leaves the configuration and the accounting database in place, so the next
# start is quicker. Idempotent.
set -uo pipefail

RUN=/run/slurm

stop() { # stop NAME PIDFILE: SIGTERM, then wait up to 20 s for the process to go
    local name=$1 pidfile=$2 pid
    [ -s "$pidfile" ] || return 0
    pid=$(cat "$pidfile")
    if kill -0 "$pid" 2>/dev/null; then
        kill "$pid"
        for _ in $(seq 40); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.5
        done
        kill -0 "$pid" 2>/dev/null && printf 'stop_cluster: %s (pid %s) still running\n' "$name" "$pid" >&2
    fi
    rm -f "$pidfile"
}

stop slurmd "$RUN/slurmd.pid"
stop slurmctld "$RUN/slurmctld.pid"
stop slurmdbd "$RUN/slurmdbd.pid"
stop mariadb /run/mysqld/mysqld.pid
stop munged /run/munge/munged.pid
exit 0
