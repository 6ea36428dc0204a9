"""Sphinx configuration of fpgen's documentation site.

Build from the repository root (fpgen installed with the ``docs`` extra; ``learn`` and ``dask``
for the API pages of fpgen.learn and fpgen.distributed):

    python -m sphinx -W -b html docs docs/_build/html

``-W`` turns every warning into an error, as in ``.ci/run``.
"""

from __future__ import annotations

import importlib.util
import os
import sys

# the repository root, so that an uninstalled checkout (PYTHONPATH-free) documents itself
sys.path.insert(0, os.path.abspath(".."))

import fpgen  # noqa: E402

project = "fpgen"
author = "the fpgen authors"
copyright = "the fpgen authors"  # noqa: A001 - Sphinx's name
release = version = fpgen.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
    "myst_parser",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build"]

# Markdown pages (the same files GitHub shows): $...$ maths, heading anchors for the
# report's in-page links
myst_enable_extensions = ["dollarmath", "amsmath"]
myst_heading_anchors = 3

# NumPy-style docstrings
napoleon_google_docstring = False
napoleon_numpy_docstring = True
napoleon_use_rtype = False
# "Attributes" as :ivar: fields, so that a documented property is not described twice
napoleon_use_ivar = True
# The docstrings write a parameter or an attribute as "name : what it is" on one line, which
# napoleon renders as a type; Sphinx then tries each word as a cross-reference and warns where a
# word names several objects (``mean``: a method of several classes). Those are not links anyone
# wrote, so ambiguous Python references are not errors.
suppress_warnings = ["ref.python"]
# fpgen.particles.Method lists its class attributes under this heading
napoleon_custom_sections = [("Class attributes", "Attributes")]

autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_default_options = {"members": True, "show-inheritance": False}
# optional dependencies that are not installed are mocked, so that the pages still build;
# CI installs them (the learn and dask extras) and documents the real modules
autodoc_mock_imports = [m for m in ("torch", "dask", "distributed")
                        if importlib.util.find_spec(m) is None]

html_theme = "alabaster"
html_title = f"fpgen {release}"
html_static_path: list[str] = []
