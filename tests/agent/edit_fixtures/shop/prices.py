"""Prices of a small shop: items, discounts, carts, invoices and a few reports.

This module is a fixture of the edit-format tests: it is long enough that rewriting one function is the small part
of it, and it repeats some lines on purpose (several functions end with `return total`).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable

CURRENCY = "EUR"
ROUNDING = 2
BULK_THRESHOLD = 10
BULK_DISCOUNT = 0.05
MEMBER_DISCOUNT = 0.1


@dataclasses.dataclass
class Item:
    """One line of a cart: a product, its unit price and how many."""

    name: str
    unit_price: float
    quantity: int = 1

    def subtotal(self) -> float:
        return self.unit_price * self.quantity

    def is_bulk(self) -> bool:
        return self.quantity >= BULK_THRESHOLD


@dataclasses.dataclass
class Discount:
    """A discount: a fraction off, or a fixed amount off, never below zero."""

    fraction: float = 0.0
    amount: float = 0.0

    def apply(self, price: float) -> float:
        reduced = price * (1 - self.fraction) - self.amount
        return max(reduced, 0.0)


def round_price(value: float) -> float:
    """Rounded to cents, halves up (not Python's banker's rounding)."""
    scaled = value * 10**ROUNDING
    return math.floor(scaled + 0.5) / 10**ROUNDING


def format_price(value: float) -> str:
    return f"{round_price(value):.{ROUNDING}f} {CURRENCY}"


def parse_price(text: str) -> float:
    """'12.50 EUR' or '12.50' -> 12.5."""
    number = text.strip().removesuffix(CURRENCY).strip()
    return float(number)


def bulk_discount(item: Item) -> float:
    if item.is_bulk():
        return item.subtotal() * BULK_DISCOUNT
    return 0.0


def item_total(item: Item) -> float:
    total = item.subtotal()
    total -= bulk_discount(item)
    return total


def cart_total(items: Iterable[Item]) -> float:
    total = 0.0
    for item in items:
        total += item_total(item)
    return total


def member_total(items: Iterable[Item], member: bool) -> float:
    total = cart_total(items)
    if member:
        total = total * (1 - MEMBER_DISCOUNT)
    return total


def cheapest(items: list[Item]) -> Item | None:
    if not items:
        return None
    return min(items, key=lambda item: item.unit_price)


def dearest(items: list[Item]) -> Item | None:
    if not items:
        return None
    return max(items, key=lambda item: item.unit_price)


def count_units(items: Iterable[Item]) -> int:
    return sum(item.quantity for item in items)


def average_unit_price(items: list[Item]) -> float:
    units = count_units(items)
    if units == 0:
        return 0.0
    return cart_total(items) / units


class Cart:
    """Items by name; adding a name again adds to its quantity."""

    def __init__(self) -> None:
        self.items: dict[str, Item] = {}
        self.discounts: list[Discount] = []

    def add(self, name: str, unit_price: float, quantity: int = 1) -> None:
        if quantity <= 0:
            raise ValueError("quantity must be positive")
        if name in self.items:
            self.items[name].quantity += quantity
        else:
            self.items[name] = Item(name, unit_price, quantity)

    def remove(self, name: str, quantity: int = 1) -> None:
        item = self.items[name]
        item.quantity -= quantity
        if item.quantity <= 0:
            del self.items[name]

    def add_discount(self, discount: Discount) -> None:
        self.discounts.append(discount)

    def total(self) -> float:
        total = cart_total(self.items.values())
        for discount in self.discounts:
            total = discount.apply(total)
        return round_price(total)

    def lines(self) -> list[str]:
        rows = []
        for item in sorted(self.items.values(), key=lambda i: i.name):
            rows.append(f"{item.quantity} x {item.name} @ {format_price(item.unit_price)}")
        return rows

    def is_empty(self) -> bool:
        return not self.items

    def __len__(self) -> int:
        return count_units(self.items.values())


@dataclasses.dataclass
class InvoiceLine:
    description: str
    amount: float


@dataclasses.dataclass
class Invoice:
    """What a customer pays: the cart's lines, shipping and tax."""

    number: int
    lines: list[InvoiceLine] = dataclasses.field(default_factory=list)
    shipping: float = 0.0
    tax_rate: float = 0.0

    def net(self) -> float:
        total = 0.0
        for line in self.lines:
            total += line.amount
        return total

    def tax(self) -> float:
        return round_price(self.net() * self.tax_rate)

    def gross(self) -> float:
        total = self.net() + self.tax() + self.shipping
        return round_price(total)

    def render(self) -> str:
        rows = [f"Invoice {self.number}"]
        for line in self.lines:
            rows.append(f"  {line.description}: {format_price(line.amount)}")
        rows.append(f"  shipping: {format_price(self.shipping)}")
        rows.append(f"  tax: {format_price(self.tax())}")
        rows.append(f"  total: {format_price(self.gross())}")
        return "\n".join(rows)


def invoice_for(cart: Cart, number: int, tax_rate: float = 0.0) -> Invoice:
    invoice = Invoice(number=number, tax_rate=tax_rate)
    for item in cart.items.values():
        invoice.lines.append(InvoiceLine(item.name, item_total(item)))
    invoice.shipping = shipping_for(cart)
    return invoice


def shipping_for(cart: Cart) -> float:
    """Free from 50 EUR of goods; else 4.90, or 9.90 for more than 20 units."""
    if cart_total(cart.items.values()) >= 50:
        return 0.0
    if len(cart) > 20:
        return 9.90
    return 4.90


def split_evenly(amount: float, parts: int) -> list[float]:
    """`amount` in `parts` shares that add up to it exactly (the last takes the cents left over)."""
    if parts <= 0:
        raise ValueError("parts must be positive")
    share = round_price(amount / parts)
    shares = [share] * (parts - 1)
    shares.append(round_price(amount - share * (parts - 1)))
    return shares


def price_change(old: float, new: float) -> float:
    """The change from old to new as a fraction of old."""
    if old == 0:
        return math.inf if new else 0.0
    return (new - old) / old


def report_by_price(items: Iterable[Item], limit: float) -> dict[str, list[str]]:
    """Item names under and over a unit price limit."""
    report: dict[str, list[str]] = {"under": [], "over": []}
    for item in items:
        if item.unit_price < limit:
            report["under"].append(item.name)
        else:
            report["over"].append(item.name)
    return report


def top_items(items: Iterable[Item], count: int) -> list[Item]:
    ranked = sorted(items, key=lambda item: item.subtotal(), reverse=True)
    return ranked[:count]


def totals_by_initial(items: Iterable[Item]) -> dict[str, float]:
    totals: dict[str, float] = {}
    for item in items:
        initial = item.name[:1].upper()
        totals[initial] = totals.get(initial, 0.0) + item_total(item)
    return totals


def price_table(items: Iterable[Item]) -> str:
    rows = ["name,quantity,unit,total"]
    for item in items:
        rows.append(f"{item.name},{item.quantity},{item.unit_price},{item_total(item)}")
    return "\n".join(rows)


def load_table(text: str) -> list[Item]:
    """The inverse of price_table (its totals are recomputed, not read)."""
    items = []
    for row in text.splitlines()[1:]:
        if not row.strip():
            continue
        name, quantity, unit, _ = row.split(",")
        items.append(Item(name, float(unit), int(quantity)))
    return items


def merge_carts(first: Cart, second: Cart) -> Cart:
    merged = Cart()
    for cart in (first, second):
        for item in cart.items.values():
            merged.add(item.name, item.unit_price, item.quantity)
        for discount in cart.discounts:
            merged.add_discount(discount)
    return merged


def discounted_total(items: Iterable[Item], discounts: Iterable[Discount]) -> float:
    total = cart_total(items)
    for discount in discounts:
        total = discount.apply(total)
    return total


def loyalty_points(total: float) -> int:
    """One point per full 10 EUR spent."""
    return int(total // 10)


def summary(cart: Cart) -> dict[str, object]:
    return {
        "units": len(cart),
        "total": cart.total(),
        "shipping": shipping_for(cart),
        "points": loyalty_points(cart.total()),
    }
