"""Executions of a particle job: on the host (:mod:`.host`), on a GPU (:mod:`.cuda`) and on a
Dask cluster (:mod:`.dask`); the protocol and the shared chunk loop are in :mod:`.base`.

Nothing is imported here: the CUDA modules import ``numba.cuda`` and the Dask one imports the
request planner, so each is imported where it is used.
"""
