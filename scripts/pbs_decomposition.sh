#!/usr/bin/env bash
# Example: a decomposition on a cluster with PBS Pro / OpenPBS. One MPI rank per core,
# two nodes of 16 cores. Rank 0 runs the master (Benders) or the dual update (Lagrangian)
# and also solves its share of the site subproblems; ranks beyond the number of sites wait.
#PBS -N carbonsched
#PBS -l select=2:ncpus=16:mpiprocs=16
#PBS -l walltime=01:00:00
#PBS -j oe
set -euo pipefail
cd "$PBS_O_WORKDIR"
source .venv/bin/activate                     # python -m venv .venv && pip install -e . beforehand
carbonsched generate --family large --seed 1 --budget-fraction 0.7 --out large.json
# Across nodes use the site's MPI (the one mpi4py was built against); the mpich wheel's mpiexec is for
# one node. Bind one rank per core so a rank's HiGHS solves are not migrated between cores:
mpiexec -n 32 --bind-to core carbonsched solve large.json --method lagrangian \
    --time-limit 3000 --gap 0.005 --checkpoint large.ckpt.npz --out large-lagrangian.json
# A job killed at its walltime leaves large.ckpt.npz (resubmit with --resume large.ckpt.npz to go on) and
# large-lagrangian.json with the best schedule found so far and its bound (rewritten at each new incumbent).
