"""The optional C scanner, declared through setuptools' stable ``ext_modules`` interface.

Everything else about the package is in pyproject.toml. The extension is optional: without a
working C compiler (or Python headers) the build goes on with a warning and the package uses
the same scanner written as regular expressions. A wheel built that way contains no compiled
code, so it is tagged ``py3-none-any`` rather than claiming the interpreter's ABI.
"""

from __future__ import annotations

import os

from setuptools import Extension, setup
from setuptools.command.bdist_wheel import bdist_wheel
from setuptools.command.build_ext import build_ext

SPEEDUPS = Extension(
    "reqio_middleware._speedups",
    sources=["reqio_middleware/_speedups.c"],
    depends=["reqio_middleware/_tags.h"],  # generated from reqio_middleware/tags.py
    optional=True,
)


def _built(command: build_ext) -> bool:
    """Whether every declared extension left its shared library in the build directory."""
    return all(os.path.exists(command.get_ext_fullpath(ext.name)) for ext in command.extensions)


class PureWhenNoExtension(bdist_wheel):
    """Builds the extension first; when it could not be compiled, makes a pure wheel."""

    def run(self) -> None:
        if not self.skip_build:
            ext = self.reinitialize_command("build_ext")
            assert isinstance(ext, build_ext)
            ext.inplace = False
            self.run_command("build_ext")
            if not _built(ext):
                self.distribution.ext_modules = []
                self.root_is_pure = True
        super().run()


setup(ext_modules=[SPEEDUPS], cmdclass={"bdist_wheel": PureWhenNoExtension})
