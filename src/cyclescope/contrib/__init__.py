"""Small, opt-in fixes for reference cycles found by cyclescope in third-party libraries.

Each submodule targets one library, imports it only when one of its functions is
called, and does nothing on releases of that library that already carry the
upstream fix. See :mod:`cyclescope.contrib.aiohttp`.
"""
