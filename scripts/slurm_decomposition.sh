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
carbonsched generate --family large --seed 1 --out large.json
# the mpich wheel's mpiexec works on one node; across nodes use the site's MPI launcher
srun carbonsched solve large.json --method lagrangian --time-limit 3000 --gap 0.005 --out large-lagrangian.json
