"""A tiny stock ledger: the example project that `semcoder repair examples/inventory` fixes."""


def restock_list(stock: dict[str, int], threshold: int) -> list[str]:
    """Items whose count is at or below the threshold, sorted by name."""
    return sorted(item for item, count in stock.items() if count < threshold)


def total_value(stock: dict[str, int], prices: dict[str, float]) -> float:
    """What the whole stock is worth."""
    return sum(count * prices[item] for item, count in stock.items())


def sell(stock: dict[str, int], item: str, quantity: int) -> dict[str, int]:
    """A new ledger after selling `quantity` of `item`; selling more than there is raises ValueError."""
    if quantity > stock.get(item, 0):
        raise ValueError(f"only {stock.get(item, 0)} {item} left")
    return {**stock, item: stock[item] - quantity}
