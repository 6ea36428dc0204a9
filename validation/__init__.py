"""fpgen's validation campaign: one case per file in ``validation/cases``, a runner and a report.

Run ``python -m validation [--quick] [--only PATTERN] [--out DIR]`` from the repository root.
Cases use only the public API of fpgen.
"""
