import pytest
from inventory import restock_list, sell, total_value

STOCK = {"apples": 3, "bread": 10, "milk": 5}


def test_restock_below_threshold():
    assert restock_list(STOCK, 4) == ["apples"]


def test_restock_at_threshold():
    assert restock_list(STOCK, 5) == ["apples", "milk"]


def test_total_value():
    assert total_value(STOCK, {"apples": 0.5, "bread": 2.0, "milk": 1.0}) == 26.5


def test_sell():
    assert sell(STOCK, "milk", 2) == {"apples": 3, "bread": 10, "milk": 3}


def test_sell_too_many():
    with pytest.raises(ValueError):
        sell(STOCK, "apples", 4)
