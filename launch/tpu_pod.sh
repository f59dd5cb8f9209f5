#!/usr/bin/env bash
# One run on a Cloud TPU VM pod slice: the same command on every worker, joined by jax.distributed
# (which finds the slice's workers by itself):
#
#   bash launch/tpu_pod.sh TPU_NAME ZONE --config=configs/imagenet_resnet.py --workdir=/mnt/shared/runs/r50
#
# Each worker needs this repository at ~/jaxnets with requirements.txt and jax[tpu] installed, and the
# workdir on a filesystem all workers share (Filestore/NFS, or a gcsfuse mount: jaxnets writes plain
# files). A maintenance event's SIGTERM makes every worker checkpoint; the same command resumes.
# `PRINT=1 bash launch/tpu_pod.sh ...` prints the gcloud command instead of running it.
set -euo pipefail
if [ $# -lt 3 ]; then
  echo "usage: $0 TPU_NAME ZONE --config=... --workdir=... [--config.F=V ...]" >&2
  exit 2
fi
name=$1 zone=$2
shift 2
remote="cd ~/jaxnets && python3 -m experiments.main --distributed $(printf '%q ' "$@")"
command=(gcloud compute tpus tpu-vm ssh "$name" --zone="$zone" --worker=all --command="$remote")
if [ -n "${PRINT:-}" ]; then
  printf '%q ' "${command[@]}"; echo
  exit 0
fi
exec "${command[@]}"
