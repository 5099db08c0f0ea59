"""Build the optional Cython twins of streamcore.

Every ``*_c.pyx`` under ``streamcore/`` is one extension module.  Compiling
is optional for users: when it fails the package still installs and runs on
the pure-Python twins, and says so.  ``STREAMCORE_REQUIRE_EXTENSIONS=1`` turns
a failed compile into an error (``make test`` and CI set it, so a broken
build can never pass as green); ``STREAMCORE_NO_EXTENSIONS=1`` skips it.
``STREAMCORE_CYTHON_ANNOTATE=1`` writes Cython's HTML annotation beside each
source, ``STREAMCORE_CYTHON_TRACE=1`` adds line tracing for profilers.
"""
import glob
import os
import sys

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

REQUIRE = os.environ.get("STREAMCORE_REQUIRE_EXTENSIONS", "") not in ("", "0")
SKIP = os.environ.get("STREAMCORE_NO_EXTENSIONS", "") not in ("", "0")
TRACE = os.environ.get("STREAMCORE_CYTHON_TRACE", "") not in ("", "0")
ANNOTATE = os.environ.get("STREAMCORE_CYTHON_ANNOTATE", "") not in ("", "0")


def _extensions():
    macros = [("CYTHON_TRACE", "1"), ("CYTHON_TRACE_NOGIL", "1")] if TRACE else []
    args = ["-O3"] if sys.platform != "win32" else ["/O2"]
    exts = []
    for source in sorted(glob.glob("streamcore/**/*_c.pyx", recursive=True)):
        name = source[: -len(".pyx")].replace("/", ".").replace(os.sep, ".")
        exts.append(Extension(name, [source], define_macros=macros, extra_compile_args=args))
    return exts


class OptionalBuildExt(build_ext):
    """Cythonize at build time; a failure is fatal only when required."""

    def finalize_options(self):
        directives = {
            "language_level": "3",
            "boundscheck": False,
            "wraparound": False,
            "cdivision": True,
            "embedsignature": True,
            "linetrace": TRACE,
        }
        try:
            from Cython.Build import cythonize
        except ImportError:
            if REQUIRE:
                raise
            self._warn("Cython is not installed")
            self.extensions = []
        else:
            self.distribution.ext_modules = cythonize(
                self.distribution.ext_modules or [],
                compiler_directives=directives,
                annotate=ANNOTATE,
                quiet=True,
            )
        super().finalize_options()

    def run(self):
        try:
            super().run()
        except Exception as exc:  # compiler missing, Cython error, ...
            if REQUIRE:
                raise
            self._warn(str(exc))

    def build_extension(self, ext):
        try:
            super().build_extension(ext)
        except Exception as exc:
            if REQUIRE:
                raise
            self._warn(f"{ext.name}: {exc}")

    @staticmethod
    def _warn(reason):
        print(
            "*" * 72 + "\nstreamcore: the Cython extensions were not built "
            f"({reason}).\nInstalling the pure-Python twins; set "
            "STREAMCORE_REQUIRE_EXTENSIONS=1 to make this an error.\n" + "*" * 72,
            file=sys.stderr,
        )


setup(
    ext_modules=[] if SKIP else _extensions(),
    cmdclass={"build_ext": OptionalBuildExt},
)
