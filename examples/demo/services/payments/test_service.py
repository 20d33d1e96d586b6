from service import luhn_ok


def test_valid_card():
    assert luhn_ok("4539 1488 0343 6467")


def test_invalid_card():
    assert not luhn_ok("4539 1488 0343 6468")


def test_too_short():
    assert not luhn_ok("42")
