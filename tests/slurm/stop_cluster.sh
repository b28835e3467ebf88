#!/usr/bin/env bash
# Stop the daemons start_cluster.sh started, by their pid files, newest first,
# and remove slurm.conf (start_cluster.sh writes it anew): with a slurm.conf and
# no controller, every `scontrol` waits 9 s for one, and the Snakemake SLURM
# plugin runs `scontrol show config` whenever snakemake starts, so every later
# snakemake command (and the report's rule graph) would wait too. Leaves the
# accounting database in place, so the next start is quicker. Idempotent.
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
rm -f /etc/slurm/slurm.conf
exit 0
