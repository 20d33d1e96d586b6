import pytest
from service import Users


def test_register_and_find():
    users = Users()
    users.register("ada@example.org", "Ada")
    assert users.name("ada@example.org") == "Ada"


def test_duplicate_is_refused():
    users = Users()
    users.register("ada@example.org", "Ada")
    with pytest.raises(KeyError):
        users.register("ada@example.org", "Ada again")


@pytest.mark.parametrize("email", ["no-at-sign", "a@b", "spaces in@x.org"])
def test_bad_email(email):
    with pytest.raises(ValueError):
        Users().register(email, "x")
