"""The bundled demo: the aiohttp #10535 leak pattern, with the standard library alone.

Like ``aiohttp.ClientResponse``, the demo's response type is exported by its
package, and its protocol is not.
"""

from cyclescope.demo.streams import ClientResponse

__all__ = ["ClientResponse"]
