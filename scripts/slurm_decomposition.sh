#!/usr/bin/env bash
# Example: a decomposition on a cluster with Slurm. One MPI rank per core;
# rank 0 runs the master (Benders) or the dual update (Lagrangian) and also
# solves its share of the site subproblems. Adjust the resources to the
# instance: ranks beyond the number of sites only wait.
#SBATCH --job-name=carbonsched
#SBATCH --nodes=2
#SBATCH --ntasks-per-node=16
#SBATCH --time=01:00:00
set -euo pipefail
python -m pip install --user -e .            # or a prepared virtualenv
carbonsched generate --family large --seed 1 --budget-fraction 0.7 --out large.json
# The mpich wheel's mpiexec works on one node; across nodes use the site's MPI launcher (srun), with
# mpi4py built against the site's MPI. --cpu-bind=cores keeps each rank on its core, so a rank's
# HiGHS solves are not migrated (and its cache kept) while rank 0 works on the master.
srun --cpu-bind=cores carbonsched solve large.json --method lagrangian --time-limit 3000 --gap 0.005 \
    --checkpoint large.ckpt.npz --out large-lagrangian.json
# SIGTERM at the walltime (Slurm sends it before SIGKILL) makes the run write its best schedule and bound,
# status 'interrupted'; resubmit with --resume large.ckpt.npz to continue from the last checkpoint.
# Should the kill come before the run has written it (Slurm's KillWait), large-lagrangian.json already holds
# the best schedule found so far and its bound (status 'feasible', stats.in_progress): it is rewritten at each
# new incumbent.
