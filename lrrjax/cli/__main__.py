"""``python -m lrrjax.cli``: the `lrrjax` console script."""

import sys

from lrrjax.cli import main

sys.exit(main())
