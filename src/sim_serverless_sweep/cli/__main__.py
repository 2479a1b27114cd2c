"""`python -m sim_serverless_sweep.cli`, the same as `sweep`."""

import sys

from sim_serverless_sweep.cli import main

sys.exit(main())
