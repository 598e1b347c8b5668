"""`python -m orderchat` is the `orderchat` command."""

import sys

from orderchat.cli import main

sys.exit(main())
