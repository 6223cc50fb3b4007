"""``python -m taxbench.experiments.cli``: the same as the ``taxbench`` console script."""

import sys

from taxbench.experiments.cli.main import main

sys.exit(main())
