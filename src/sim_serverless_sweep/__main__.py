"""`python -m sim_serverless_sweep` runs the `sweep` command line."""

import sys

from sim_serverless_sweep.cli import main

sys.exit(main())
