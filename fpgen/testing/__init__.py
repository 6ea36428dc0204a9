"""Public helpers for tests of numerical schemes (fpgen's and its users').

``fpgen.testing.strategies`` holds hypothesis strategies (install the ``test`` extra).
"""
