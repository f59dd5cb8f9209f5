"""Launching studies: sweeps on this machine or SLURM (launch.sweep), their reports (launch.report),
multi-host runs (launch/multihost.py, launch/slurm_multinode.sh, launch/tpu_pod.sh)."""
