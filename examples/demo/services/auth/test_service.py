from service import sign, verify


def test_round_trip():
    assert verify(sign("ada")) == "ada"


def test_tampered_token_is_rejected():
    assert verify(sign("ada")[:-1] + "0") is None


def test_garbage_is_rejected():
    assert verify("nonsense") is None
