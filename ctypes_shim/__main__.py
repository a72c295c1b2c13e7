import sys

from ._cli import main

sys.exit(main())  # pragma: no branch
