#!/usr/bin/env bash
# A real single-node SLURM cluster on this machine, on loopback: munged, slurmctld and slurmd.
# Used by the SLURM executor's tests and for trying the executor without a lab cluster.
#
#   scripts/slurm-local.sh start        write the config, start what is not running, wait (<= 30 s)
#                                       until the node accepts jobs
#   scripts/slurm-local.sh stop         cancel the local cluster's jobs, stop the daemons it started
#   scripts/slurm-local.sh status       what runs, and the node's state
#   scripts/slurm-local.sh reconfigure  rewrite the config and tell slurmctld to re-read it
#   scripts/slurm-local.sh env          prints `export SLURM_CONF=...` (use with eval)
#
# Needs root (slurmd runs jobs as their users), CAP_MKNOD for the fake GPUs, free loopback
# ports $SLURM_LOCAL_PORT and +1 (default 6817, 6818) and `apt-get install slurm-wlm munge`.
# Every command is idempotent; stop only stops daemons whose pid files this script wrote (and
# munged only if this script started it). Config, state and logs live under $SLURM_LOCAL_DIR (default
# /var/lib/nanoresearch-slurm); /etc/slurm is never touched. SLURM commands find this cluster
# through SLURM_CONF=$SLURM_LOCAL_DIR/etc/slurm.conf, so export it (`eval "$(... env)"`)
# before using sbatch/squeue by hand; the test fixture sets it for the test process.
#
# The cluster: node `localhost` (127.0.0.1) with 4 CPUs, up to 4000 MB and 2 fake GPUs
# (/dev/fakegpu0-1, device nodes aliasing /dev/null; jobs asking --gres=gpu:N get
# CUDA_VISIBLE_DEVICES). Partitions: `debug` (default) and `urgent`, a higher priority tier on
# the same node whose jobs preempt debug jobs by requeueing them (PreemptMode=REQUEUE).
# Memory: jobacct_gather/linux samples every second and kills a job over its --mem
# (OverMemoryKill); no cgroups needed. SLURM 22.05 then reports the job FAILED (signal 9) and
# slurmstepd writes "Exceeded job memory limit" to its stderr (cgroup enforcement, which
# containers often lack, would report OUT_OF_MEMORY instead).
# Finished jobs stay visible to scontrol for MinJobAge seconds ($SLURM_LOCAL_MIN_JOB_AGE,
# default 300), and forever after in the job completion log that `sacct -c` reads.
set -euo pipefail

DIR=${SLURM_LOCAL_DIR:-/var/lib/nanoresearch-slurm}
PORT=${SLURM_LOCAL_PORT:-6817}  # slurmctld; slurmd listens on PORT+1
MIN_JOB_AGE=${SLURM_LOCAL_MIN_JOB_AGE:-300}
export SLURM_CONF="$DIR/etc/slurm.conf"
MUNGE_KEY=/etc/munge/munge.key
MUNGE_PIDFILE=/run/munge/munged.pid

say() { printf '[slurm-local] %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

preflight() {
    [ "$(id -u)" -eq 0 ] || die "must run as root (slurmd starts jobs as their owners)"
    local tool
    for tool in slurmctld slurmd munged sinfo scontrol; do
        command -v "$tool" >/dev/null || die "$tool not found: apt-get install -y --no-install-recommends slurm-wlm munge"
    done
}

real_memory_mb() {
    # 4000 MB, or less on a small machine: leave the system 20% of what it has.
    local total_kb
    total_kb=$(awk '/^MemTotal:/ {print $2}' /proc/meminfo)
    local fits=$((total_kb * 8 / 10 / 1024))
    echo $((fits < 4000 ? fits : 4000))
}

render_slurm_conf() {
    cat <<EOF
# Written by scripts/slurm-local.sh; rewritten on every start.
ClusterName=nanoresearch-local
SlurmctldHost=localhost(127.0.0.1)
SlurmctldPort=$PORT
SlurmdPort=$((PORT + 1))
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
# A requeued job may start again cred_expire seconds after it stopped (default 120).
AuthInfo=cred_expire=10
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/run/slurmctld.pid
SlurmdPidFile=$DIR/run/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SlurmdParameters=config_overrides
GresTypes=gpu
ReturnToService=2
MailProg=/bin/true
MinJobAge=$MIN_JOB_AGE
# Seconds between SIGTERM and SIGKILL when a job is cancelled, timed out or preempted.
KillWait=5
# No slurmdbd: the completion log is what sacct -c reads once scontrol has forgotten a job.
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=$DIR/log/jobcomp.log
# Memory enforcement without cgroups: sample every second, kill jobs over their --mem.
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=task=1
JobAcctGatherParams=OverMemoryKill
# Schedule every few seconds (default 60/30 s), so a requeued job restarts promptly.
SchedulerParameters=sched_interval=5,bf_interval=5
# Jobs in a higher PriorityTier partition requeue the jobs they need the resources of.
PreemptType=preempt/partition_prio
PreemptMode=REQUEUE
NodeName=localhost NodeAddr=127.0.0.1 CPUs=4 RealMemory=$(real_memory_mb) Gres=gpu:2 State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP PriorityTier=1
PartitionName=urgent Nodes=localhost Default=NO MaxTime=INFINITE State=UP PriorityTier=10
EOF
}

render_gres_conf() {
    cat <<EOF
AutoDetect=off
NodeName=localhost Name=gpu File=/dev/fakegpu[0-1]
EOF
}

# Writes a file only when its content changes; returns 0 when it did.
write_if_changed() {
    local path=$1 content
    content=$(cat)
    if [ -f "$path" ] && [ "$(cat "$path")" = "$content" ]; then return 1; fi
    printf '%s\n' "$content" >"$path"
}

write_config() {
    mkdir -p "$DIR"/{etc,state,spool,run,log}
    local changed=1
    render_slurm_conf | write_if_changed "$DIR/etc/slurm.conf" && changed=0
    render_gres_conf | write_if_changed "$DIR/etc/gres.conf" && changed=0
    return $changed
}

make_fake_gpus() {
    local n
    for n in 0 1; do
        [ -e "/dev/fakegpu$n" ] || mknod -m 666 "/dev/fakegpu$n" c 1 3 \
            || die "cannot create /dev/fakegpu$n (mknod needs CAP_MKNOD)"
    done
}

# Prints the pid in a pid file when that process is alive and is the named program.
live_pid() {
    local pidfile=$1 program=$2 pid
    [ -f "$pidfile" ] || return 1
    pid=$(cat "$pidfile" 2>/dev/null) || return 1
    [ -n "$pid" ] && [ -d "/proc/$pid" ] || return 1
    # The pid may have been reused by something else since the file was written.
    [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$program" ] || return 1
    echo "$pid"
}

start_munge() {
    if [ ! -s "$MUNGE_KEY" ]; then
        say "creating $MUNGE_KEY"
        mkdir -p /etc/munge
        dd if=/dev/urandom of="$MUNGE_KEY" bs=1024 count=1 status=none
    fi
    chown munge:munge /etc/munge "$MUNGE_KEY"
    chmod 700 /etc/munge
    chmod 400 "$MUNGE_KEY"
    if munge -n </dev/null >/dev/null 2>&1; then return; fi  # a munged answers already
    mkdir -p /run/munge /var/lib/munge /var/log/munge
    chown munge:munge /run/munge /var/lib/munge /var/log/munge
    chmod 755 /run/munge
    say "starting munged"
    runuser -u munge -- /usr/sbin/munged
    # Remember that this script started it, so stop leaves a system munged alone.
    live_pid "$MUNGE_PIDFILE" munged >"$DIR/run/munged.ours"
    wait_for "munged" 10 munge_answers
}

munge_answers() { munge -n </dev/null >/dev/null 2>&1; }
controller_answers() { scontrol ping 2>/dev/null | grep -q UP; }
# The node is listed once per partition: look at the first line.
node_state() { sinfo -h -N -n localhost -o %t 2>/dev/null | head -n 1; }
# Ready = accepting jobs: idle, or already running some (after a controller restart).
node_ready() { case "$(node_state)" in idle | mix | alloc | comp) return 0 ;; *) return 1 ;; esac; }

# wait_for WHAT SECONDS CHECK [PIDFILE PROGRAM]: polls CHECK; gives up early if the daemon died.
wait_for() {
    local what=$1 seconds=$2 check=$3 pidfile=${4:-} program=${5:-} i
    for ((i = 0; i < seconds * 5; i++)); do
        "$check" && return 0
        if [ -n "$pidfile" ] && ((i > 5)) && ! live_pid "$pidfile" "$program" >/dev/null; then
            die "$program exited: $(tail -n 3 "$DIR/log/$program.log" 2>/dev/null)"
        fi
        sleep 0.2
    done
    die "$what not ready after ${seconds}s (logs: $DIR/log)"
}

start() {
    preflight
    local reconfigure=1
    write_config && reconfigure=0
    make_fake_gpus
    start_munge
    if live_pid "$DIR/run/slurmctld.pid" slurmctld >/dev/null; then
        [ $reconfigure -eq 0 ] && { say "config changed: scontrol reconfigure"; scontrol reconfigure; }
    else
        say "starting slurmctld"
        slurmctld
    fi
    wait_for "slurmctld" 30 controller_answers "$DIR/run/slurmctld.pid" slurmctld
    if ! live_pid "$DIR/run/slurmd.pid" slurmd >/dev/null; then
        say "starting slurmd"
        slurmd -N localhost
    fi
    # A node left DOWN by an earlier unclean stop comes back by itself (ReturnToService=2)
    # once slurmd registers; resuming by hand only speeds that up.
    wait_for "node localhost" 30 node_ready_or_resume "$DIR/run/slurmd.pid" slurmd
    say "ready: export SLURM_CONF=$SLURM_CONF"
}

node_ready_or_resume() {
    node_ready && return 0
    case "$(node_state)" in
        down* | drain* | fail*) scontrol update NodeName=localhost State=RESUME 2>/dev/null || true ;;
    esac
    return 1
}

reconfigure() {
    preflight
    write_config || true
    controller_answers || die "slurmctld is not running: scripts/slurm-local.sh start"
    scontrol reconfigure
    say "reconfigured (MinJobAge=$MIN_JOB_AGE)"
}

stop_daemon() {
    local pidfile=$1 program=$2 pid i
    pid=$(live_pid "$pidfile" "$program") || return 0
    say "stopping $program ($pid)"
    kill -TERM "$pid"
    for ((i = 0; i < 50; i++)); do
        [ -d "/proc/$pid" ] || return 0
        sleep 0.2
    done
    kill -KILL "$pid" 2>/dev/null || true
}

cancel_local_jobs() {
    # Job steps outlive slurmd, so a job left running would keep its processes after stop.
    # This cluster belongs to this script, so every job on it is cancelled.
    controller_answers || return 0
    local jobs
    jobs=$(squeue -h -o %A 2>/dev/null | tr '\n' ' ')
    [ -n "${jobs// /}" ] || return 0
    say "cancelling jobs on the local cluster: $jobs"
    # shellcheck disable=SC2086
    scancel $jobs 2>/dev/null || true
    local i
    for ((i = 0; i < 50; i++)); do
        [ -z "$(squeue -h -o %A 2>/dev/null)" ] && return 0
        sleep 0.2
    done
}

stop() {
    [ -f "$SLURM_CONF" ] || { say "nothing to stop ($SLURM_CONF absent)"; return 0; }
    cancel_local_jobs
    stop_daemon "$DIR/run/slurmd.pid" slurmd
    stop_daemon "$DIR/run/slurmctld.pid" slurmctld
    if [ -s "$DIR/run/munged.ours" ] && [ "$(live_pid "$MUNGE_PIDFILE" munged || true)" = "$(cat "$DIR/run/munged.ours")" ]; then
        stop_daemon "$MUNGE_PIDFILE" munged
    fi
    rm -f "$DIR/run/munged.ours"
}

status() {
    local rc=0 program pidfile pid
    for program in slurmctld slurmd; do
        pidfile="$DIR/run/$program.pid"
        if pid=$(live_pid "$pidfile" "$program"); then echo "$program: running ($pid)"; else echo "$program: stopped"; rc=1; fi
    done
    if munge_answers; then echo "munged: running"; else echo "munged: stopped"; rc=1; fi
    if [ $rc -eq 0 ]; then sinfo -N -o "%N %t %c %m %G %P" 2>/dev/null || rc=1; fi
    echo "SLURM_CONF=$SLURM_CONF"
    return $rc
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    status) status ;;
    reconfigure) reconfigure ;;
    env) echo "export SLURM_CONF=$SLURM_CONF" ;;
    *) echo "usage: $0 start|stop|status|reconfigure|env" >&2; exit 2 ;;
esac
