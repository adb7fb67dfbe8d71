"""Processes that tests/test_guarantees.py starts (alone, or under ``mpiexec -n P python -m mpi4py``):

kill PATH DIR                      train test_guarantees.kill_scenario on PATH with a checkpoint
                                   DIR/resume.ckpt; the run SIGKILLs itself in epoch 3
measure PATH DIR KILL_STATUS OUT   measure every row of the table on PATH (KILL_STATUS: the exit
                                   status of the kill job before it); rank 0 writes {row: result}
                                   to OUT as JSON, or {"error": traceback} for a row that raised
"""

import json
import pathlib
import sys
import traceback

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from tests import test_guarantees as G


def main(mode, path, folder, *rest):
    np.seterr(all="raise", under="ignore")  # as tests/conftest.py sets for every test
    if path == "torch-cpu":
        import torch

        torch.set_num_threads(1)  # as the test module does: tiny networks
    rank = 0
    if G.PATHS[path].ranks:
        from mpi4py import MPI

        rank = MPI.COMM_WORLD.rank
    if mode == "kill":
        G.kill_scenario(G.Ctx(path, pathlib.Path(folder), killed=lambda: 0))
        sys.exit(3)  # not killed: the test sees a finished run
    status, out = int(rest[0]), rest[1]
    ctx = G.Ctx(path, pathlib.Path(folder), killed=lambda: status)
    results = {}
    for name, g in G.GUARANTEES.items():
        try:
            results[name] = G._jsonable(g.measure(ctx))
        except BaseException:  # noqa: BLE001 - reported in the row's cell
            results[name] = {"error": traceback.format_exc()}
    if rank == 0:
        with open(out, "w") as f:
            json.dump(results, f)


if __name__ == "__main__":
    main(*sys.argv[1:])
