# A one-machine Slurm cluster for tests, sourced by the Slurm test: its own
# munged (own key and socket) and slurmctld + slurmd with a config written
# here, every file under $SLURM_TEST_DIR, ports chosen free. Nothing of the
# machine's own Slurm or munge setup is read or changed.
#   slurm_cluster_start DIR   starts it and exports SLURM_CONF for the clients
#   slurm_cluster_stop        stops every daemon and job it started

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

slurm_cluster_start() {
  SLURM_TEST_DIR="$1"
  local d="$SLURM_TEST_DIR" host
  for p in munged mungekey slurmctld slurmd sbatch scontrol sinfo; do
    command -v "$p" >/dev/null || {
      echo "slurm_cluster: $p is missing; scripts/install_deps.sh installs slurm-wlm and munge" >&2
      return 1
    }
  done
  mkdir -p "$d/state" "$d/spool" "$d/log" "$d/munge"
  chmod 700 "$d/munge"
  mungekey -c -f -k "$d/munge/munge.key" || return 1
  munged -f --key-file="$d/munge/munge.key" --socket="$d/munge/munge.sock" \
    --pid-file="$d/munge/munged.pid" --log-file="$d/log/munged.log" \
    --seed-file="$d/munge/munge.seed" || {
    cat "$d/log/munged.log" >&2
    return 1
  }
  host="$(hostname -s)"
  cat >"$d/slurm.conf" <<CONF
ClusterName=deepfmtest
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$(free_port)
SlurmdPort=$(free_port)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$d/munge/munge.sock
StateSaveLocation=$d/state
SlurmdSpoolDir=$d/spool
SlurmctldPidFile=$d/slurmctld.pid
SlurmdPidFile=$d/slurmd.pid
SlurmctldLogFile=$d/log/slurmctld.log
SlurmdLogFile=$d/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SchedulerType=sched/builtin
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
MpiDefault=none
ReturnToService=2
MinJobAge=3600
SlurmdParameters=config_overrides
NodeName=dfmnode NodeHostname=$host NodeAddr=127.0.0.1 CPUs=8 State=UNKNOWN
PartitionName=dfm Nodes=dfmnode Default=YES MaxTime=INFINITE State=UP
CONF
  export SLURM_CONF="$d/slurm.conf"
  slurmctld -f "$SLURM_CONF" || return 1
  slurmd -f "$SLURM_CONF" -N dfmnode || return 1
  local i
  for ((i = 0; i < 60; i++)); do
    if sinfo -h -N -o '%t' 2>/dev/null | grep -q -E '^(idle|mix|alloc)'; then return 0; fi
    sleep 0.5
  done
  echo "slurm_cluster: the node did not come up within 30 s" >&2
  sinfo -N >&2 || true
  tail -20 "$d/log/slurmctld.log" "$d/log/slurmd.log" >&2 || true
  return 1
}

slurm_cluster_stop() {
  local d="${SLURM_TEST_DIR:-}" f
  [ -n "$d" ] || return 0
  [ -n "${SLURM_CONF:-}" ] && scancel --full -u root >/dev/null 2>&1 || true
  for f in slurmd slurmctld munge/munged; do
    [ -f "$d/$f.pid" ] && kill "$(cat "$d/$f.pid")" 2>/dev/null || true
  done
  sleep 1
  for f in slurmd slurmctld munge/munged; do
    [ -f "$d/$f.pid" ] && kill -9 "$(cat "$d/$f.pid")" 2>/dev/null || true
  done
}
