class Stock:
    def __init__(self) -> None:
        self.levels: dict[str, int] = {}

    def add(self, sku: str, qty: int) -> None:
        self.levels[sku] = self.levels.get(sku, 0) + qty

    def take(self, sku: str, qty: int) -> None:
        if self.levels.get(sku, 0) < qty:
            raise ValueError(f"not enough {sku}")
        self.levels[sku] -= qty
