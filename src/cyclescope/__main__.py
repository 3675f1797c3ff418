"""``python -m cyclescope``: the same as the ``cyclescope`` command."""

import sys

from cyclescope.cli import main

if __name__ == "__main__":
    sys.exit(main())
