"""Compute kernels: counter-based random numbers and fused loops (numba CPU, numba-CUDA).

Nothing here imports the rest of fpgen; the physics hands plain scalar functions down.
"""
