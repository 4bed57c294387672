"""The demo shop's catalogue: about 200 products in the categories a Vietnamese online shop sells.

Prices are in VND, rounded to 1.000 ₫ and ending the way shops price (…9.000). The catalogue is the
same for every seed, so screenshots and docs stay comparable.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# category -> (code, share of items sold, price range in thousands of ₫, item kinds, variants)
CATEGORIES: dict[str, tuple[str, float, tuple[int, int], list[str], list[str]]] = {
    "Thời trang": ("TT", 0.30, (99, 890), [
        "Áo thun cotton form rộng", "Áo sơ mi lụa", "Quần jean ống suông", "Váy liền thân", "Áo khoác gió",
        "Chân váy xếp ly", "Áo dài cách tân", "Giày sneaker", "Túi xách mini", "Quần short kaki"],
        ["Trắng", "Đen", "Be", "Xanh navy", "Hồng pastel"]),
    "Mỹ phẩm": ("MP", 0.25, (79, 690), [
        "Son kem lì", "Kem chống nắng SPF50", "Sữa rửa mặt dịu nhẹ", "Serum vitamin C", "Mặt nạ giấy (hộp 10)",
        "Nước tẩy trang", "Kem dưỡng ẩm", "Phấn phủ kiềm dầu", "Toner hoa hồng"],
        ["30ml", "50ml", "100ml", "Bộ đôi", "Mini"]),
    "Thực phẩm": ("TP", 0.15, (49, 390), [
        "Cà phê rang xay Buôn Ma Thuột", "Trà ô long Bảo Lộc", "Hạt điều rang muối Bình Phước",
        "Mật ong rừng U Minh", "Khô gà lá chanh", "Nước mắm Phú Quốc", "Bánh pía Sóc Trăng"],
        ["250g", "500g", "1kg", "Hộp quà"]),
    "Gia dụng": ("GD", 0.12, (99, 2500), [
        "Nồi chiên không dầu", "Bình giữ nhiệt", "Chảo chống dính", "Máy xay sinh tố", "Bộ hộp đựng thực phẩm",
        "Quạt mini cầm tay", "Nồi cơm điện"],
        ["Cơ bản", "Cao cấp", "Size lớn"]),
    "Mẹ & bé": ("MB", 0.08, (89, 890), [
        "Tã dán sơ sinh", "Bình sữa chống sặc", "Khăn sữa cotton", "Sữa tắm gội em bé", "Xe đẩy gấp gọn"],
        ["Size S", "Size M", "Size L", "Combo 3"]),
    "Phụ kiện điện tử": ("PK", 0.06, (49, 990), [
        "Tai nghe bluetooth", "Sạc dự phòng 10000mAh", "Cáp sạc nhanh", "Ốp lưng điện thoại", "Giá đỡ điện thoại"],
        ["Đen", "Trắng", "Xanh"]),
    "Sức khỏe": ("SK", 0.04, (99, 790), [
        "Vitamin tổng hợp", "Khẩu trang y tế (hộp 50)", "Collagen dạng nước", "Dầu gió xanh"],
        ["Hộp nhỏ", "Hộp lớn"]),
}
BRANDS = ("Sài Gòn Xinh", "Hà Thành", "Mộc An", "Lá Xanh", "Việt Phúc", "Bông Sen")


@dataclass(frozen=True)
class Product:
    sku: str
    name: str
    category: str
    brand: str
    price: int  # VND

    def properties(self, quantity: int | None = None) -> dict:
        """The product as Segment's e-commerce spec sends it."""
        props = {"product_id": self.sku, "sku": self.sku, "name": self.name, "category": self.category,
                 "brand": self.brand, "price": self.price, "currency": "VND",
                 "url": f"https://shop.example.vn/p/{self.sku.lower()}"}
        if quantity is not None:
            props["quantity"] = quantity
        return props


def _price(rng: np.random.Generator, lo: int, hi: int) -> int:
    thousands = float(np.exp(rng.uniform(np.log(lo), np.log(hi))))
    # Shop prices end in 9.000 (149.000 ₫, 1.299.000 ₫).
    rounded = int(round(thousands / 10.0) * 10 - 1) if thousands >= 100 else int(round(thousands))
    return max(lo, min(hi, rounded)) * 1000


def build_catalogue(per_kind: int = 5) -> list[Product]:
    """The products, category by category (at most `per_kind` variants of each item kind)."""
    rng = np.random.default_rng(20240210)  # fixed: the catalogue does not change with --seed
    products = []
    for category, (code, _share, (lo, hi), kinds, variants) in CATEGORIES.items():
        n = 0
        for kind in kinds:
            chosen = rng.choice(len(variants), size=min(per_kind, len(variants)), replace=False)
            base = _price(rng, lo, hi)
            for v in sorted(chosen):
                n += 1
                price = max(lo * 1000, base + int(rng.integers(-2, 3)) * 10_000)
                products.append(Product(f"{code}-{n:03d}", f"{kind} – {variants[v]}", category,
                                        BRANDS[int(rng.integers(len(BRANDS)))], price))
    return products


class Catalogue:
    """Products with popularity: each category's items follow a Zipf-like curve."""

    def __init__(self, products: list[Product] | None = None):
        self.products = products or build_catalogue()
        self.categories = list(CATEGORIES)
        self.category_share = np.array([CATEGORIES[c][1] for c in self.categories])
        self.category_share = self.category_share / self.category_share.sum()
        self.by_category = {c: [p for p in self.products if p.category == c] for c in self.categories}
        self.weights = {}
        for c, items in self.by_category.items():
            w = 1.0 / np.arange(1, len(items) + 1) ** 0.8
            self.weights[c] = np.cumsum(w / w.sum())

    def pick(self, u_category: float, u_item: float, favourite: int) -> Product:
        """A product from two uniforms: 65 % from the customer's favourite category, else by share."""
        if u_category < 0.65:
            category = self.categories[favourite]
        else:
            u = (u_category - 0.65) / 0.35
            category = self.categories[min(int(np.searchsorted(np.cumsum(self.category_share), u)),
                                           len(self.categories) - 1)]
        items = self.by_category[category]
        return items[min(int(np.searchsorted(self.weights[category], u_item)), len(items) - 1)]
