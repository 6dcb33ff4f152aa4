"""`python -m tests.benchmarks.capacity`: see the package docstring."""

from __future__ import annotations

import sys

from tests.benchmarks.capacity.cli import main

sys.exit(main())
