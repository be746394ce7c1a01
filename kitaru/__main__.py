from __future__ import annotations

import sys

from kitaru.cli import main

sys.exit(main())
