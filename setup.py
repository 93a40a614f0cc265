"""Build the Cython hot path (ext/_hotpath.pyx) into edge._hotpath.

A failed compile falls back to the pure-NumPy twin with a loud warning, unless
EDGE_REQUIRE_NATIVE=1 is set, which makes the failure fatal. EDGE_DEBUG_EXT=1
builds with bounds checking on (for a debug test run): Cython's checks in the .pyx and
the C kernels' table-index checks (EDGE_DEBUG_BOUNDS). EDGE_SCALAR=1 builds the portable scalar
kernel even where SSE2 exists (EDGE_FORCE_SCALAR: the code ARM boxes run), so x86 CI tests it.
"""

import os
import sys

from setuptools import find_packages, Extension, setup
from setuptools.command.build_ext import build_ext

REQUIRE_NATIVE = os.environ.get("EDGE_REQUIRE_NATIVE") == "1"
DEBUG_EXT = os.environ.get("EDGE_DEBUG_EXT") == "1"
FORCE_SCALAR = os.environ.get("EDGE_SCALAR") == "1"


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


def _debug_copy(source):
    """A copy of ``source`` whose ``# cython:`` header turns bounds and wraparound checks on.

    The header in the .pyx wins over compiler_directives, so the debug build edits the header.
    """
    with open(source, encoding="utf-8") as handle:
        lines = handle.read().splitlines(keepends=True)
    header = lines[0]
    for name in ("boundscheck", "wraparound", "initializedcheck"):
        header = header.replace(f"{name}=False", f"{name}=True")
    os.makedirs(os.path.join("build", "debug_ext"), exist_ok=True)
    debug_source = os.path.join("build", "debug_ext", os.path.basename(source))
    with open(debug_source, "w", encoding="utf-8") as handle:
        handle.write(header + "".join(lines[1:]))
    return debug_source


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
    source = "ext/_hotpath.pyx"
    macros = [("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")]
    if DEBUG_EXT:
        source = _debug_copy(source)
        macros.append(("EDGE_DEBUG_BOUNDS", "1"))
    if FORCE_SCALAR:
        macros.append(("EDGE_FORCE_SCALAR", "1"))
    # No -ffast-math: the kernels' rounding must not depend on the compiler's mood.
    extension = Extension(
        "edge._hotpath",
        [source],
        include_dirs=[numpy.get_include(), "ext"],
        # depends: rebuilt when they change, and shipped in the sdist (the .pyx too: cythonize swaps in the .c)
        depends=["ext/_hotpath.pyx", "ext/hotpath_kernels.h", "ext/hotpath_kernels.pxd"],
        define_macros=macros,
        extra_compile_args=["-O3"] if os.name != "nt" else ["/O2"],
    )
    try:
        # include_path: the .pxd beside the .pyx is found from the debug copy too.
        return cythonize([extension], compiler_directives=directives, quiet=True, include_path=["ext"])
    except Exception as error:
        if REQUIRE_NATIVE:
            raise
        _warn_fallback(error)
        return []


setup(
    # Every subpackage of edge/ (found, not listed: a new stage must not be left out of a wheel),
    # plus the bundled labels and manifest from models/.
    packages=[*find_packages(include=["edge", "edge.*"]), "edge.bundled"],
    package_dir={"edge": "edge", "edge.bundled": "models"},
    package_data={
        "edge": ["data/*", "py.typed", "*.pyi"],
        "edge.web": ["static/*"],
        "edge.bundled": ["*.yaml", "*.txt"],
    },
    ext_modules=_extensions(),
    cmdclass={"build_ext": OptionalBuildExt},
)
