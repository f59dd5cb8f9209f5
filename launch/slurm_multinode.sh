#!/usr/bin/env bash
# One run trained by several processes under SLURM (one per node, or per GPU), joined by
# jax.distributed, which reads SLURM's environment (coordinator, process count and index):
#
#   sbatch --nodes=4 --ntasks-per-node=1 --gpus-per-task=8 --time=24:00:00 \
#       launch/slurm_multinode.sh --config=configs/imagenet_resnet.py --workdir=/shared/runs/r50 [--config.F=V ...]
#
# The workdir must be on a filesystem every node sees. SLURM sends SIGTERM to every task 120 s before the
# time limit (--signal): each process checkpoints at the next step and exits 75, and the job requeues
# itself to resume there. `PRINT=1 bash launch/slurm_multinode.sh ARGS` prints the step it would run.
#SBATCH --job-name=jaxnets
#SBATCH --signal=TERM@120
#SBATCH --requeue
#SBATCH --open-mode=append
set -euo pipefail
cd "${SLURM_SUBMIT_DIR:-$(dirname "$0")/..}"
step=(srun --kill-on-bad-exit=1 "${PYTHON:-python3}" -m experiments.main --distributed "$@")
if [ -n "${PRINT:-}" ]; then
  printf '%q ' "${step[@]}"; echo
  exit 0
fi
code=0
"${step[@]}" || code=$?
if [ "$code" = 75 ] && [ -n "${SLURM_JOB_ID:-}" ]; then
  echo "jaxnets: stopped with a checkpoint; requeueing job $SLURM_JOB_ID to resume" >&2
  scontrol requeue "$SLURM_JOB_ID"
fi
exit "$code"
