"""A task that records when it ran: interval.py OUT_DIR NAME SECONDS [EXIT_CODE]."""

import sys
import time
from pathlib import Path

out, name, seconds = Path(sys.argv[1]), sys.argv[2], float(sys.argv[3])
start = time.time()
time.sleep(seconds)
(out / name).write_text(f"{start} {time.time()}")
sys.exit(int(sys.argv[4]) if len(sys.argv) > 4 else 0)
