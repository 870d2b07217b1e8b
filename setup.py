"""Compiled kernels: every ``gristmill/native/*.c`` file is one extension module.

Everything else about the package lives in ``pyproject.toml``; setuptools reads both.
"""

from pathlib import Path

from setuptools import Extension, setup

NATIVE = Path("gristmill") / "native"

setup(
    ext_modules=[
        Extension(
            f"gristmill.native.{source.stem}",
            sources=[str(source)],
            depends=[str(header) for header in sorted(NATIVE.glob("*.h"))],
            extra_compile_args=["-O3", "-std=c11"],
        )
        for source in sorted(NATIVE.glob("*.c"))
    ]
)
