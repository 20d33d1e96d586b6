"""Secrets (§3): the value of an environment variable whose name says it is one is shown as ***
wherever the engine prints or stores it for people; the task itself still gets the value."""

from __future__ import annotations

import re
from collections.abc import Mapping

SECRET_NAME = re.compile(r"KEY|TOKEN|SECRET|PASSWORD|AUTH", re.IGNORECASE)


def masked(env: Mapping[str, str]) -> dict[str, str]:
    return {name: "***" if SECRET_NAME.search(name) else value for name, value in env.items()}
