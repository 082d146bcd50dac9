"""`python -m app.commands ...`: the same as the `deskhand` command."""

import sys

from app.commands import main

sys.exit(main())
