#!/usr/bin/env bash
# A real single-node SLURM cluster on this machine, for tests and for trying the
# SLURM profile (snakemake --profile profiles/slurm) without a cluster.
#
#   scripts/slurm_local.sh start    install slurm-wlm + munge (apt-get, as root) if missing,
#                                   write slurm.conf, start munged, slurmctld, slurmd and
#                                   wait until the node is idle
#   scripts/slurm_local.sh status   show the daemons this script started and `sinfo`
#                                   (exit 3 when the cluster is not running)
#   scripts/slurm_local.sh stop     stop exactly the daemons this script started (by pid)
#   scripts/slurm_local.sh env      print `export SLURM_CONF=...` for sbatch/squeue/sinfo
#
# Everything lives in one state directory (default /var/tmp/ser-slurm-local, or
# $SLURM_LOCAL_DIR): slurm.conf, spool and state folders, logs and the pid files of the
# daemons it started. A munged that is already running is reused and never stopped.
# Client commands find the configuration through SLURM_CONF:
#   eval "$(scripts/slurm_local.sh env)"; sinfo
# and, when no other configuration is there, through a symlink at SLURM's default path
# /etc/slurm/slurm.conf (removed by `stop`): Snakemake's jobstep plugin drops SLURM_CONF
# from the environment of the `srun` it runs inside each job.
# Debian 12 ships SLURM 22.05; the config has no accounting (no slurmdbd), so Snakemake's
# plugin needs --slurm-status-command squeue and --slurm-no-account (profiles/slurm does so).
set -euo pipefail

STATE=${SLURM_LOCAL_DIR:-/var/tmp/ser-slurm-local}
CONF=$STATE/slurm.conf
PIDS=$STATE/pids
LOGS=$STATE/log
DEFAULT_CONF=/etc/slurm/slurm.conf
NODE=$(hostname -s)
WAIT_SECONDS=${SLURM_LOCAL_WAIT:-90}
export SLURM_CONF=$CONF

say() { printf 'slurm_local: %s\n' "$*"; }
die() { printf 'slurm_local: error: %s\n' "$*" >&2; exit 1; }

usage() {
    sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'
}

install_packages() {
    local missing=()
    command -v slurmctld >/dev/null 2>&1 || missing+=(slurmctld)
    command -v slurmd >/dev/null 2>&1 || missing+=(slurmd)
    command -v sbatch >/dev/null 2>&1 || missing+=(slurm-client)
    command -v munged >/dev/null 2>&1 || missing+=(munge)
    [ ${#missing[@]} -eq 0 ] && return 0
    [ "$(id -u)" = 0 ] || die "missing ${missing[*]}: run as root, or 'sudo apt-get install slurm-wlm munge'"
    command -v apt-get >/dev/null 2>&1 || die "missing ${missing[*]} and no apt-get: install SLURM and munge by hand"
    say "installing slurm-wlm and munge with apt-get (missing: ${missing[*]})"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        slurm-wlm munge >"$STATE/apt.log" 2>&1 || { tail -20 "$STATE/apt.log" >&2; die "apt-get install failed (log: $STATE/apt.log)"; }
}

# RealMemory: 90 % of the machine's memory in MB (sbatch rejects --mem without it,
# and slurmd drains a node that reports less than configured).
real_memory_mb() {
    awk '/^MemTotal:/ { printf "%d", $2 / 1024 * 0.9 }' /proc/meminfo
}

write_conf() {
    local cpus mem
    cpus=$(nproc)
    mem=$(real_memory_mb)
    mkdir -p "$STATE/ctld" "$STATE/spool" "$LOGS" "$PIDS"
    cat >"$CONF.tmp" <<EOF
# Written by scripts/slurm_local.sh: a single-node cluster without accounting.
ClusterName=ser-local
SlurmctldHost=$NODE(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SwitchType=switch/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
ReturnToService=2
MinJobAge=600
KillWait=10
InactiveLimit=0
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/spool
SlurmctldPidFile=$STATE/slurmctld.pidfile
SlurmdPidFile=$STATE/slurmd.pidfile
SlurmctldLogFile=$LOGS/slurmctld.log
SlurmdLogFile=$LOGS/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
NodeName=$NODE NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=local Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
    mv "$CONF.tmp" "$CONF"
    say "wrote $CONF ($NODE: $cpus CPUs, RealMemory=${mem} MB)"
}

# SLURM's default configuration path points at ours unless another configuration is there.
link_default_conf() {
    if [ -L "$DEFAULT_CONF" ] && [ "$(readlink "$DEFAULT_CONF")" = "$CONF" ]; then return 0; fi
    if [ -e "$DEFAULT_CONF" ] || [ -L "$DEFAULT_CONF" ]; then
        say "warning: $DEFAULT_CONF exists and is not ours: srun inside jobs reads it, not $CONF"
        return 0
    fi
    mkdir -p "$(dirname "$DEFAULT_CONF")"
    ln -s "$CONF" "$DEFAULT_CONF"
    say "linked $DEFAULT_CONF -> $CONF"
}

unlink_default_conf() {
    if [ -L "$DEFAULT_CONF" ] && [ "$(readlink "$DEFAULT_CONF")" = "$CONF" ]; then
        rm -f "$DEFAULT_CONF"
        say "removed the link $DEFAULT_CONF"
    fi
}

# The pid recorded for a daemon, if that process is still the daemon we started.
running_pid() {
    local name=$1 file=$PIDS/$1.pid pid
    [ -f "$file" ] || return 1
    pid=$(cat "$file")
    [ -r "/proc/$pid/cmdline" ] || return 1
    tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q "$name" || return 1
    echo "$pid"
}

# Start a daemon in the foreground of its own session, in the background of this
# shell; setsid/setpriv exec, so $! is the daemon's own pid.
launch() {
    local name=$1 pid; shift
    if pid=$(running_pid "$name"); then
        say "$name already running (pid $pid)"
        return 0
    fi
    setsid "$@" >>"$LOGS/$name.out" 2>&1 </dev/null &
    pid=$!
    echo "$pid" >"$PIDS/$name.pid"
    sleep 1
    kill -0 "$pid" 2>/dev/null || { tail -20 "$LOGS/$name.out" >&2; rm -f "$PIDS/$name.pid"; die "$name exited at start (log: $LOGS/$name.out)"; }
    say "started $name (pid $pid)"
}

munge_works() { munge -n 2>/dev/null | unmunge >/dev/null 2>&1; }

start_munge() {
    if running_pid munged >/dev/null || ! munge_works; then :; else
        say "using the munged already running on this machine (not started here, not stopped by 'stop')"
        return 0
    fi
    if [ ! -s /etc/munge/munge.key ]; then
        say "creating /etc/munge/munge.key"
        if command -v mungekey >/dev/null 2>&1; then
            mungekey --create --keyfile=/etc/munge/munge.key
        else
            dd if=/dev/urandom of=/etc/munge/munge.key bs=1 count=1024 status=none
        fi
    fi
    mkdir -p /run/munge /var/lib/munge /var/log/munge
    chown munge:munge /etc/munge /etc/munge/munge.key /run/munge /var/lib/munge /var/log/munge
    chmod 0700 /etc/munge
    chmod 0400 /etc/munge/munge.key
    chmod 0755 /run/munge
    launch munged setpriv --reuid=munge --regid=munge --init-groups /usr/sbin/munged --foreground
    for _ in $(seq 20); do munge_works && return 0; sleep 0.5; done
    die "munged does not answer (log: $LOGS/munged.out)"
}

node_state() { timeout 10 sinfo -h -N -n "$NODE" -o '%t' 2>/dev/null | head -1; }

cmd_start() {
    mkdir -p "$STATE" "$PIDS" "$LOGS"
    install_packages
    if running_pid slurmctld >/dev/null && running_pid slurmd >/dev/null; then
        say "already running"
    else
        write_conf
        link_default_conf
        start_munge
        launch slurmctld /usr/sbin/slurmctld -D -f "$CONF"
        launch slurmd /usr/sbin/slurmd -D -f "$CONF"
    fi
    local state="" deadline=$((SECONDS + WAIT_SECONDS))
    while [ $SECONDS -lt $deadline ]; do
        state=$(node_state || true)
        case $state in
            idle|mix|alloc) say "node $NODE is $state; run: eval \"\$($0 env)\"; sinfo"; return 0 ;;
            drain*|down*|inval*) timeout 10 scontrol update NodeName="$NODE" State=RESUME >/dev/null 2>&1 || true ;;
        esac
        sleep 2
    done
    tail -5 "$LOGS/slurmctld.log" "$LOGS/slurmd.log" >&2 || true
    die "node $NODE not idle after ${WAIT_SECONDS}s (state: '${state:-no answer}'; logs in $LOGS)"
}

cmd_stop() {
    local any=0 name pid
    for name in slurmd slurmctld munged; do   # the reverse order of start
        if pid=$(running_pid "$name"); then
            any=1
            kill -TERM "$pid"
            for _ in $(seq 30); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
            if kill -0 "$pid" 2>/dev/null; then
                kill -KILL "$pid"
                say "killed $name (pid $pid; did not stop in 15 s)"
            else
                say "stopped $name (pid $pid)"
            fi
        fi
        rm -f "$PIDS/$name.pid"
    done
    [ $any = 1 ] || say "nothing to stop (no daemon started by this script is running)"
    unlink_default_conf
}

cmd_status() {
    local name pid rc=0
    for name in munged slurmctld slurmd; do
        if pid=$(running_pid "$name"); then
            say "$name running (pid $pid)"
        else
            say "$name not started by this script"
            [ "$name" = munged ] || rc=3
        fi
    done
    if [ -f "$CONF" ] && timeout 10 sinfo -N -l 2>/dev/null; then :; else
        say "no cluster answers with $CONF"; rc=3
    fi
    return $rc
}

case ${1:-} in
    start) cmd_start ;;
    stop) cmd_stop ;;
    status) cmd_status ;;
    env) echo "export SLURM_CONF=$CONF" ;;
    -h|--help|help) usage ;;
    *) printf 'slurm_local: error: unknown command %s (start, stop, status, env)\n\n' "'${1:-}'" >&2
       usage >&2; exit 2 ;;
esac
