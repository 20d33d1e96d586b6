"""A task that starts a tree of sleeping processes and then sleeps: tree.py MARKER [--ignore-term] [--escape].

Each process's command line holds MARKER so a test can look for survivors with psutil.
--ignore-term makes every process ignore SIGTERM (only SIGKILL ends them);
--escape starts one grandchild in a session of its own, outside the task's process group.
"""

import signal
import subprocess
import sys
import time

marker = sys.argv[1]
flags = sys.argv[2:]
if "--ignore-term" in flags:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
if "--child" not in flags:
    sleeper = [sys.executable, __file__, marker, "--child", *flags]
    subprocess.Popen(sleeper)
    subprocess.Popen(sleeper, start_new_session="--escape" in flags)
    print("tree started", flush=True)
time.sleep(600)
