"""Build hook for the optional C core.

Everything else lives in pyproject.toml. The extension is optional: where no
compiler is available the build goes on and cyclescope uses its pure-Python path.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "cyclescope._core",
            sources=["src/cyclescope/_core.c"],
            optional=True,
        )
    ]
)
