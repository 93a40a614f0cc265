"""Build the Cython hot path (ext/_hotpath.pyx) into edge._hotpath.

A failed compile falls back to the pure-NumPy twin with a loud warning, unless
EDGE_REQUIRE_NATIVE=1 is set, which makes the failure fatal. EDGE_DEBUG_EXT=1
builds with bounds checking on (for a debug test run).
"""

import os
import sys

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

REQUIRE_NATIVE = os.environ.get("EDGE_REQUIRE_NATIVE") == "1"
DEBUG_EXT = os.environ.get("EDGE_DEBUG_EXT") == "1"


class BuildFailed(Exception):
    pass


def _warn_fallback(error):
    bar = "*" * 75
    sys.stderr.write(
        f"\n{bar}\nWARNING: the edge-har native extension could not be compiled:\n"
        f"  {error}\nedge-har will run on the pure-NumPy twin (slower preprocessing).\n"
        f"Install a C compiler and the Python headers, or set EDGE_REQUIRE_NATIVE=1\n"
        f"to make this failure fatal.\n{bar}\n\n"
    )


class OptionalBuildExt(build_ext):
    """build_ext that turns a compile failure into a warning unless strict mode is on."""

    def run(self):
        try:
            super().run()
        except Exception as error:  # missing compiler, missing headers, Cython error
            if REQUIRE_NATIVE:
                raise
            _warn_fallback(error)

    def build_extension(self, ext):
        try:
            super().build_extension(ext)
        except Exception as error:
            if REQUIRE_NATIVE:
                raise
            _warn_fallback(error)


def _extensions():
    try:
        import numpy
        from Cython.Build import cythonize
    except ImportError as error:
        if REQUIRE_NATIVE:
            raise
        _warn_fallback(error)
        return []
    directives = {"language_level": "3", "embedsignature": True}
    if DEBUG_EXT:
        directives.update(boundscheck=True, wraparound=True, initializedcheck=True)
    extension = Extension(
        "edge._hotpath",
        ["ext/_hotpath.pyx"],
        include_dirs=[numpy.get_include()],
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
        extra_compile_args=["-O3", "-ffast-math", "-fno-finite-math-only"] if os.name != "nt" else ["/O2"],
    )
    try:
        return cythonize([extension], compiler_directives=directives, quiet=True)
    except Exception as error:
        if REQUIRE_NATIVE:
            raise
        _warn_fallback(error)
        return []


setup(
    packages=["edge", "edge.models", "edge.bundled"],
    package_dir={"edge": "edge", "edge.bundled": "models"},
    package_data={
        "edge": ["data/*", "py.typed", "*.pyi"],
        "edge.bundled": ["*.yaml", "*.txt"],
    },
    ext_modules=_extensions(),
    cmdclass={"build_ext": OptionalBuildExt},
)
