"""`python -m crm_graph.api.cli`: the same as the `crm-graph` command."""

import sys

from crm_graph.api.cli import main

sys.exit(main())
