"""Sales tax by region."""

RATES = {"north": 0.2, "south": 0.1}


def rate(region):
    return RATES.get(region, 0.0)


def with_tax(amount, region):
    return amount * rate(region)
