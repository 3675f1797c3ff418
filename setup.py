"""Build hook for the optional C extensions (the core and the heap-graph algorithms).

Everything else lives in pyproject.toml. The extensions are optional: where no
compiler is available the build goes on and cyclescope uses its pure-Python paths.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "cyclescope._core",
            sources=["src/cyclescope/_core.c"],
            depends=["src/cyclescope/_carray.h"],
            optional=True,
        ),
        Extension(
            "cyclescope._heapalgo",
            sources=["src/cyclescope/_heapalgo.c"],
            depends=["src/cyclescope/_carray.h"],
            optional=True,
        ),
    ]
)
