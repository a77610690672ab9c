"""`python -m coalmine` runs the CLI, so tests need no installed console script."""

from coalmine.cli import main

raise SystemExit(main())
