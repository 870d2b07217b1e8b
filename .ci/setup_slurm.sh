#!/usr/bin/env bash
# A single-node Slurm on this machine, for the tests marked `slurm` (pytest -m slurm).
#
# Installs Debian's slurm-wlm and munge, writes a slurm.conf for this host only, and starts
# munged, slurmctld and slurmd directly as daemons (CI containers run no systemd). Needs root.
# Idempotent: a second call restarts the daemons with a fresh configuration.
set -euo pipefail

if [ "$(id -u)" -ne 0 ]; then
    echo "setup_slurm.sh: run as root" >&2
    exit 1
fi

if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
    apt-get update
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends slurm-wlm munge
fi

NODE="$(hostname -s)"
# slurmd -C prints this machine's node line (CPUs, sockets, memory) as Slurm sees it.
HARDWARE="$(slurmd -C | head -n 1 | sed -e "s/^NodeName=[^ ]* //")"

# -- munge: Slurm's authentication between its daemons and clients -----------------------
mkdir -p /etc/munge /run/munge /var/lib/munge /var/log/munge
if [ ! -s /etc/munge/munge.key ]; then
    dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key status=none
fi
chown -R munge:munge /etc/munge /run/munge /var/lib/munge /var/log/munge
chmod 0700 /etc/munge /var/lib/munge /var/log/munge
chmod 0755 /run/munge
chmod 0400 /etc/munge/munge.key
if ! munge -n >/dev/null 2>&1; then
    runuser -u munge -- /usr/sbin/munged
fi
munge -n | unmunge >/dev/null

# -- slurm -------------------------------------------------------------------------------
mkdir -p /etc/slurm /var/spool/slurmctld /var/spool/slurmd /var/log/slurm /run/slurm
cat > /etc/slurm/slurm.conf <<CONF
ClusterName=gristmill-ci
SlurmctldHost=${NODE}(127.0.0.1)
SlurmUser=root
AuthType=auth/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
ReturnToService=2
SchedulerType=sched/backfill
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=/run/slurm/slurmctld.pid
SlurmdPidFile=/run/slurm/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/filetxt
JobCompLoc=/var/log/slurm/jobcomp.log
MinJobAge=300
NodeName=${NODE} NodeAddr=127.0.0.1 ${HARDWARE} State=UNKNOWN
PartitionName=debug Nodes=${NODE} Default=YES MaxTime=INFINITE State=UP OverSubscribe=YES
CONF

stop_daemon() {  # by the pid file the daemon wrote, so nothing else is touched
    if [ -s "$1" ]; then
        kill "$(cat "$1")" 2>/dev/null || true
        rm -f "$1"
        sleep 1
    fi
}
stop_daemon /run/slurm/slurmd.pid
stop_daemon /run/slurm/slurmctld.pid
slurmctld -c -i
slurmd -N "${NODE}"

# Wait until the node takes jobs.
for _ in $(seq 1 30); do
    if sinfo -h -N -o "%t" 2>/dev/null | grep -qE "^(idle|mix|alloc)"; then
        sinfo
        exit 0
    fi
    sleep 1
done
echo "setup_slurm.sh: the node did not come up; last lines of the logs:" >&2
tail -n 20 /var/log/slurm/slurmctld.log /var/log/slurm/slurmd.log >&2 || true
exit 1
