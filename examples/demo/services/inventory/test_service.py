import pytest
from service import Stock


def test_add_and_take():
    stock = Stock()
    stock.add("pen", 5)
    stock.take("pen", 2)
    assert stock.levels["pen"] == 3


def test_cannot_oversell():
    stock = Stock()
    stock.add("pen", 1)
    with pytest.raises(ValueError):
        stock.take("pen", 2)
