from decimal import Decimal


def total(lines: list[tuple[str, int, Decimal]], discount: Decimal = Decimal(0)) -> Decimal:
    gross = sum((qty * price for _, qty, price in lines), Decimal(0))
    return (gross * (1 - discount)).quantize(Decimal("0.01"))
