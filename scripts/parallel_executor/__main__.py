from __future__ import annotations

import sys

from parallel_executor.cli import main

sys.exit(main())
