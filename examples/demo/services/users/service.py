import re

EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[a-z]{2,}$")


class Users:
    def __init__(self) -> None:
        self._by_email: dict[str, str] = {}

    def register(self, email: str, name: str) -> None:
        if not EMAIL.match(email):
            raise ValueError(f"bad email: {email}")
        if email in self._by_email:
            raise KeyError(f"already registered: {email}")
        self._by_email[email] = name

    def name(self, email: str) -> str:
        return self._by_email[email]
