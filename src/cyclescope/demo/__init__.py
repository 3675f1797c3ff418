"""The bundled demo: the aiohttp #10535 leak pattern, with the standard library alone."""
