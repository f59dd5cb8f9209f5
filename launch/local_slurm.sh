#!/usr/bin/env bash
# A real one-node SLURM cluster on localhost, for tests and CI:  local_slurm.sh start | stop | status
#
#   start   installs Debian's slurm-wlm and munge when missing (root + apt-get), writes a throwaway
#           slurm.conf under $JAXNETS_SLURM_DIR (default /tmp/jaxnets-slurm), starts a private munged,
#           slurmctld and slurmd (all as root) and waits until the node is idle (60 s, else prints the
#           daemon logs and fails). A quick no-op when the cluster is already up.
#   stop    cancels every job of this cluster, stops the three daemons it started, removes the state dir.
#   status  exit 0 and one line of sinfo when up, exit 1 otherwise.
#
# Where the config lives: /etc/slurm/slurm.conf (the compiled-in default of Debian's Slurm) becomes a
# symlink to $JAXNETS_SLURM_DIR/slurm.conf, so sbatch, squeue, scontrol, srun inside jobs and submitit
# all work with no extra environment. If /etc/slurm/slurm.conf is someone else's real file, it is left
# alone and every client needs SLURM_CONF; start prints that line either way (eval-able):
#   export SLURM_CONF=/tmp/jaxnets-slurm/slurm.conf
#
# sacct: there is no accounting database (slurmdbd needs MariaDB), so Debian's sacct only says "Slurm
# accounting storage is disabled" (`sacct -c` reads the jobcomp/filetxt log $JAXNETS_SLURM_DIR/jobcomp.txt
# but names array tasks by their raw ids). submitit polls `sacct -o JobID,State,NodeList --parsable2 -j ID`
# for job states; without an answer it logs "Bypassing sacct error", treats every job as UNKNOWN (not
# done) and relies on the result pickle alone, so job.result() of a job killed before writing one
# (scancel, time limit, node failure) would wait forever. So start also puts a small `sacct` stand-in
# at /usr/local/bin/sacct (a symlink to $JAXNETS_SLURM_DIR/bin/sacct, ahead of /usr/bin in PATH; only
# where no other /usr/local/bin/sacct exists; removed by stop; JAXNETS_SLURM_SACCT_SHIM=0 skips it). It
# answers -o/--format, -j/--jobs, -P/-p/--parsable2, -n, -X from `squeue -t all` (jobs stay there for
# MinJobAge, one day here) and hands any other use to the real /usr/bin/sacct.
#
# The node: `hostname -s` at 127.0.0.1, the CPUs and memory slurmd -C detects; partition debug
# (default, no time limit); select/cons_tres CR_Core, proctrack/linuxproc, task/affinity (each
# task bound to its cores by sched_setaffinity, no cgroups: XLA's CPU numbers depend on the core count);
# JobRequeue=1 so `scontrol requeue` (submitit's preemption path) works, and a requeued job may start
# again cred_expire+1 s later: 11 s here ($JAXNETS_SLURM_CRED_EXPIRE, default 10) instead of Slurm's 121 s;
# the scheduler looks every 2 s (sched_interval, bf_interval) rather than every 30-60 s.
set -euo pipefail

DIR=${JAXNETS_SLURM_DIR:-/tmp/jaxnets-slurm}
CONF=$DIR/slurm.conf
ETC_CONF=/etc/slurm/slurm.conf
MARK='# written by jaxnets launch/local_slurm.sh'
PATH=$PATH:/usr/sbin:/sbin
NODE=$(hostname -s)

die() { echo "local_slurm: $*" >&2; exit 1; }
# alive NAME: the process in $DIR/NAME.pid runs and is NAME (so a reused pid is never taken for it).
alive() {
  local pid
  pid=$(cat "$DIR/$1.pid" 2>/dev/null) && [ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$1" ]
}
up() { alive munged && alive slurmctld && alive slurmd; }
env_line() { echo "export SLURM_CONF=$CONF"; }
node_state() { SLURM_CONF=$CONF sinfo -h -n "$NODE" -o %T 2>/dev/null | head -1; }

install_if_missing() {
  local have=1 c
  for c in munged mungekey slurmctld slurmd sbatch sinfo; do command -v "$c" >/dev/null || have=0; done
  [ "$have" = 1 ] && return 0
  [ "$(id -u)" = 0 ] || die "slurm/munge are not installed and installing them needs root (sudo $0 start)"
  command -v apt-get >/dev/null || die "slurm/munge are not installed and there is no apt-get to install them"
  echo "local_slurm: installing Debian's slurm-wlm and munge" >&2
  export DEBIAN_FRONTEND=noninteractive
  local apt=(apt-get install -y -qq --no-install-recommends -o Dpkg::Use-Pty=0 slurm-wlm munge)
  if ! "${apt[@]}" >"$DIR.apt.log" 2>&1; then
    apt-get update -qq >>"$DIR.apt.log" 2>&1 || true
    "${apt[@]}" >>"$DIR.apt.log" 2>&1 || { cat "$DIR.apt.log" >&2; die "apt-get install slurm-wlm munge failed"; }
  fi
  rm -f "$DIR.apt.log"
}

write_conf() {
  # slurmd -C prints this machine's NodeName=... CPUs=... Boards=... RealMemory=... line.
  local hw
  hw=$(slurmd -C | head -1 | sed -e 's/^NodeName=[^ ]* //' -e 's/ *$//')
  cat >"$CONF" <<EOF
$MARK (throwaway; removed by 'stop')
ClusterName=jaxnets
SlurmctldHost=$NODE(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$DIR/munge/munge.socket,cred_expire=${JAXNETS_SLURM_CRED_EXPIRE:-10}
StateSaveLocation=$DIR/ctld
SlurmdSpoolDir=$DIR/slurmd
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/affinity
MpiDefault=none
SwitchType=switch/none
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=2,bf_interval=2
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
JobRequeue=1
ReturnToService=2
MinJobAge=86400
KillWait=10
SlurmctldTimeout=30
SlurmdTimeout=60
MailProg=/bin/true
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/filetxt
JobCompLoc=$DIR/jobcomp.txt
NodeName=$NODE NodeAddr=127.0.0.1 $hw State=UNKNOWN
PartitionName=debug Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
EOF
}

link_conf() {
  # Point the default config location at ours unless it holds someone else's config.
  if [ -L "$ETC_CONF" ] || [ ! -e "$ETC_CONF" ] || head -1 "$ETC_CONF" | grep -qF "$MARK"; then
    mkdir -p "$(dirname "$ETC_CONF")"
    ln -sfn "$CONF" "$ETC_CONF"
  else
    echo "local_slurm: $ETC_CONF is not ours; left alone (clients need SLURM_CONF)" >&2
  fi
}

write_sacct_shim() {
  [ "${JAXNETS_SLURM_SACCT_SHIM:-1}" = 0 ] && return 0
  mkdir -p "$DIR/bin"
  { echo '#!/usr/bin/env bash'
    echo "# sacct stand-in written by jaxnets launch/local_slurm.sh for its accounting-less test cluster."
    echo "OURS=$(readlink -f "$CONF")"
    cat <<'EOF'
# Answers submitit's `sacct -o JobID,State,NodeList --parsable2 -j ID ...` from `squeue -t all`.
REAL=/usr/bin/sacct
[ "$(readlink -f "${SLURM_CONF:-/etc/slurm/slurm.conf}")" = "$OURS" ] || exec "$REAL" "$@"
fields=JobID,JobName,Partition,State,NodeList jobs='' header=1
while [ $# -gt 0 ]; do
  case "$1" in
    -o | --format) fields=$2; shift ;;
    -o* | --format=*) fields=${1#-o}; fields=${fields#--format=} ;;
    -j | --jobs) jobs=$jobs,$2; shift ;;
    -j* | --jobs=*) a=${1#-j}; jobs=$jobs,${a#--jobs=} ;;
    -P | -p | --parsable | --parsable2 | -X | --allocations) ;;
    -n | --noheader) header= ;;
    *) exec "$REAL" "$@" ;;
  esac
  shift
done
fmt='' names=''
IFS=, read -ra list <<<"$fields"
for f in "${list[@]}"; do
  case "${f,,}" in
    jobid) c=%i ;; jobidraw) c=%A ;; jobname) c=%j ;; state) c=%T ;; nodelist) c=%N ;;
    partition) c=%P ;; user) c=%u ;; submit) c=%V ;; start) c=%S ;; end) c=%e ;;
    elapsed) c=%M ;; timelimit) c=%l ;; alloccpus | ncpus) c=%C ;; reason) c=%r ;;
    *) echo "sacct (local_slurm stand-in): field '$f' not supported; use JobID,JobIDRaw,JobName,State,NodeList,Partition,User,Submit,Start,End,Elapsed,Timelimit,AllocCPUS,Reason" >&2; exit 1 ;;
  esac
  fmt=$fmt${fmt:+|}$c names=$names${names:+|}$f
done
[ -n "$header" ] && echo "$names"
exec squeue -h -t all ${jobs:+-j "${jobs#,}"} -o "$fmt"
EOF
  } >"$DIR/bin/sacct"
  chmod 755 "$DIR/bin/sacct"
  if [ -L /usr/local/bin/sacct ] || [ ! -e /usr/local/bin/sacct ]; then
    ln -sfn "$DIR/bin/sacct" /usr/local/bin/sacct
  else
    echo "local_slurm: /usr/local/bin/sacct is not ours; left alone (sacct will say accounting is disabled)" >&2
  fi
}

dump_logs() {
  local f
  for f in "$DIR"/log/*.log; do
    [ -f "$f" ] && { echo "----- $f (last 40 lines)"; tail -40 "$f"; }
  done >&2
}

start() {
  if up; then
    case "$(node_state)" in idle | mixed | allocated | completing) link_conf; env_line; return 0 ;; esac
  fi
  [ "$(id -u)" = 0 ] || die "start needs root (daemons run as root, config goes to $ETC_CONF)"
  mkdir -p "$(dirname "$DIR")"
  install_if_missing
  stop_daemons quiet
  rm -rf "$DIR"
  mkdir -p "$DIR"/{ctld,slurmd,log,munge}
  chmod 755 "$DIR" "$DIR/munge"
  write_conf
  link_conf
  write_sacct_shim

  # A private munged (own key and socket), so a system munged, if any, is neither needed nor touched.
  mungekey --create --keyfile="$DIR/munge/munge.key" >/dev/null 2>&1 \
    || dd if=/dev/urandom of="$DIR/munge/munge.key" bs=1024 count=1 status=none
  chmod 400 "$DIR/munge/munge.key"
  setsid munged --force --key-file="$DIR/munge/munge.key" --socket="$DIR/munge/munge.socket" \
    --pid-file="$DIR/munged.pid" --log-file="$DIR/log/munged.log" --seed-file="$DIR/munge/seed" \
    </dev/null >>"$DIR/log/munged.log" 2>&1 || { dump_logs; die "munged did not start"; }
  setsid slurmctld -f "$CONF" </dev/null >>"$DIR/log/slurmctld.log" 2>&1 \
    || { dump_logs; die "slurmctld did not start"; }
  setsid slurmd -f "$CONF" -N "$NODE" </dev/null >>"$DIR/log/slurmd.log" 2>&1 \
    || { dump_logs; die "slurmd did not start"; }

  local t0=$SECONDS state=
  while [ $((SECONDS - t0)) -lt 60 ]; do
    state=$(node_state)
    [ "$state" = idle ] && { env_line; return 0; }
    sleep 0.5
  done
  dump_logs
  die "node $NODE not idle after 60 s (sinfo says '${state:-nothing}'); logs above"
}

stop_daemons() {
  local d pid
  if alive slurmctld; then
    # Cancel every job so that no slurmstepd or job process outlives the cluster.
    if SLURM_CONF=$CONF squeue -h -o %i 2>/dev/null | grep -q .; then
      SLURM_CONF=$CONF squeue -h -o %A | sort -u | SLURM_CONF=$CONF xargs -r scancel --full 2>/dev/null || true
      for _ in $(seq 40); do
        SLURM_CONF=$CONF squeue -h -t R,CG,S -o %i 2>/dev/null | grep -q . || break
        sleep 0.5
      done
    fi
  fi
  # All three at once (each takes about 2 s to exit); SIGKILL after 10 s.
  local pids=()
  for d in slurmd slurmctld munged; do
    alive "$d" || continue
    pid=$(cat "$DIR/$d.pid")
    kill "$pid" 2>/dev/null || true
    pids+=("$pid")
    [ "${1:-}" = quiet ] || echo "local_slurm: stopping $d ($pid)" >&2
  done
  for pid in "${pids[@]}"; do
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -9 "$pid" 2>/dev/null || true
  done
}

stop() {
  if [ "$(readlink "$ETC_CONF" 2>/dev/null)" = "$CONF" ]; then rm -f "$ETC_CONF"; fi
  if [ "$(readlink /usr/local/bin/sacct 2>/dev/null)" = "$DIR/bin/sacct" ]; then rm -f /usr/local/bin/sacct; fi
  [ -d "$DIR" ] || { echo "local_slurm: not running ($DIR absent)" >&2; return 0; }
  stop_daemons
  rm -rf "$DIR"
}

status() {
  if up && [ -n "$(node_state)" ]; then
    echo "local_slurm: up, $(SLURM_CONF=$CONF sinfo -h -o '%P %a %D %T %c cpus %m MB')"
    env_line
  else
    echo "local_slurm: down" >&2
    return 1
  fi
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  *) echo "usage: $0 start|stop|status   (state dir \$JAXNETS_SLURM_DIR, default /tmp/jaxnets-slurm)" >&2; exit 2 ;;
esac
