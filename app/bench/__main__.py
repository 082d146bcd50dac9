"""`python -m app.bench`: the same as `deskhand bench`."""

from app.bench import main

raise SystemExit(main())
