import time
from decimal import Decimal

from service import total


def test_total():
    assert total([("pen", 2, Decimal("1.50")), ("pad", 1, Decimal("3.00"))]) == Decimal("6.00")


def test_discount():
    time.sleep(0.5)  # a slower suite: the engine runs the others meanwhile
    assert total([("pen", 10, Decimal("1.00"))], Decimal("0.1")) == Decimal("9.00")
