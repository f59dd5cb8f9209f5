"""The local SLURM cluster of tests/slurm_cluster.py runs a batch job (python3 -m pytest -m slurm)."""

import subprocess

import pytest

pytest_plugins = ['tests.slurm_cluster']


@pytest.mark.slurm
def test_sbatch_wait_runs_a_job(slurm_cluster, tmp_path):
  out = tmp_path / 'job.out'
  job = subprocess.run(['sbatch', '--wait', '--output', str(out), '--wrap', 'echo ok'], cwd=tmp_path,
                       capture_output=True, text=True, timeout=120, check=False)
  assert job.returncode == 0, job.stdout + job.stderr
  assert out.read_text().strip() == 'ok'
