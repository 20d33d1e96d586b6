"""The demo's final task: read every test task's result (PARALLEL_DEP_RESULTS) and summarize."""

import json
import os
import re

results = json.loads(os.environ["PARALLEL_DEP_RESULTS"])
passed = 0
for task_id, path in sorted(results.items()):
    with open(path) as f:
        result = json.load(f)
    match = re.search(r"(\d+) passed", result["output"])
    count = int(match.group(1)) if match else 0
    passed += count
    print(f"{task_id:<16} {result['status']:<8} {count} passed in {result['duration']:.2f}s")
print(f"all services: {passed} tests passed")
with open(os.environ["PARALLEL_RESULT_FILE"], "w") as f:
    json.dump({"passed": passed, "services": len(results)}, f)
