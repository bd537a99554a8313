"""Allows `python -m cgmtray`."""

import sys

from cgmtray.cli import main

sys.exit(main())
