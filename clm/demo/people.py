"""Who the demo shop's customers are: Vietnamese names, mobile numbers, emails, cities, birthdays.

Everything is drawn in arrays for a chunk of customers at once. Phone numbers, emails and user ids are
built from the customer's index so that no two customers share one: identity resolution would
otherwise (rightly) fold them into one profile.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np

from clm.lib.text import fold

# Family names with rough shares of the population (Nguyễn alone is about 38 %).
FAMILY = {
    "Nguyễn": 38.0, "Trần": 11.0, "Lê": 9.5, "Phạm": 7.0, "Hoàng": 3.0, "Huỳnh": 3.0, "Phan": 4.5, "Vũ": 2.5,
    "Võ": 2.5, "Đặng": 2.1, "Bùi": 2.0, "Đỗ": 1.4, "Hồ": 1.3, "Ngô": 1.3, "Dương": 1.0, "Lý": 0.5,
    "Đinh": 0.6, "Trương": 0.6, "Mai": 0.4, "Lâm": 0.4, "Cao": 0.3, "Tạ": 0.2, "Châu": 0.2,
}
MIDDLE = {
    "male": {"Văn": 30, "Minh": 12, "Hữu": 8, "Đức": 8, "Quốc": 7, "Thanh": 5, "Công": 5, "Hoàng": 5,
             "Đình": 5, "Gia": 4, "Anh": 3, "Tuấn": 3, "Xuân": 2, "Trung": 3},
    "female": {"Thị": 40, "Ngọc": 12, "Thanh": 8, "Thu": 7, "Minh": 5, "Bảo": 4, "Hồng": 5, "Phương": 4,
               "Kim": 5, "Khánh": 3, "Mỹ": 2, "Hoài": 2, "Diệu": 2},
}
GIVEN = {
    "male": ["An", "Anh", "Bảo", "Bình", "Cường", "Dũng", "Duy", "Đạt", "Đức", "Hải", "Hiếu", "Hoàng", "Hùng",
             "Huy", "Khang", "Khoa", "Kiên", "Long", "Lâm", "Minh", "Nam", "Nghĩa", "Phong", "Phúc", "Quang",
             "Quân", "Sơn", "Tài", "Thắng", "Thành", "Thịnh", "Toàn", "Trung", "Tú", "Tuấn", "Việt", "Vinh",
             "Khôi", "Lộc", "Tiến"],
    "female": ["Anh", "Châu", "Chi", "Diệp", "Dung", "Giang", "Hà", "Hằng", "Hạnh", "Hiền", "Hoa", "Hồng",
               "Hương", "Huyền", "Lan", "Linh", "Loan", "Ly", "Mai", "My", "Nga", "Ngân", "Ngọc", "Nhi",
               "Nhung", "Oanh", "Phương", "Quỳnh", "Tâm", "Thảo", "Thu", "Thùy", "Trang", "Trâm", "Uyên",
               "Vân", "Vy", "Xuân", "Yến", "Hân"],
}
# Cities weighted roughly by urban population and online shopping.
CITIES = {
    "TP. Hồ Chí Minh": 30.0, "Hà Nội": 22.0, "Đà Nẵng": 5.0, "Hải Phòng": 4.5, "Cần Thơ": 3.5,
    "Biên Hòa": 3.5, "Thủ Dầu Một": 3.0, "Nha Trang": 2.5, "Huế": 2.5, "Vũng Tàu": 2.0, "Buôn Ma Thuột": 2.0,
    "Quy Nhơn": 1.8, "Vinh": 1.8, "Bắc Ninh": 1.8, "Hạ Long": 1.5, "Thái Nguyên": 1.5, "Nam Định": 1.4,
    "Đà Lạt": 1.4, "Long Xuyên": 1.2, "Rạch Giá": 1.0, "Mỹ Tho": 1.0, "Thanh Hóa": 1.6, "Pleiku": 0.8,
    "Phan Thiết": 0.9, "Cà Mau": 0.8,
}
# Mobile prefixes in use since the 2018 renumbering: Viettel, Vinaphone, MobiFone, Vietnamobile, Gmobile, iTel
# (checked against libphonenumber: every 7-digit suffix of these is a valid number).
MOBILE_PREFIXES = ("086", "096", "097", "098", "032", "033", "034", "035", "036", "037", "038", "039",
                   "088", "091", "094", "081", "082", "083", "084", "085", "090", "093", "070", "076",
                   "077", "078", "079", "092", "056", "058", "059", "087")
EMAIL_DOMAINS = ("gmail.example.com", "yahoo.example.com", "icloud.example.com", "outlook.example.com")
_EMAIL_DOMAIN_P = (0.78, 0.1, 0.07, 0.05)
_PHONE_SPACE = len(MOBILE_PREFIXES) * 10**7
_PHONE_STEP = 2_654_435_761  # a prime: index -> number is a bijection on the numbering space
# Ages of online shoppers: mostly 22-40.
_AGE_BANDS = ((18, 24, 0.25), (25, 34, 0.40), (35, 44, 0.22), (45, 62, 0.13))


def _choice(rng: np.random.Generator, weights: dict, n: int) -> np.ndarray:
    keys = list(weights)
    p = np.array([weights[k] for k in keys], dtype=float)
    return np.array(keys, dtype=object)[rng.choice(len(keys), size=n, p=p / p.sum())]


@dataclass
class People:
    """A chunk of customers' personal data, one entry per customer."""

    index: np.ndarray  # global customer index (0-based)
    user_id: list[str]
    full_name: list[str]
    gender: np.ndarray  # "male" / "female"
    birthday: list[date]
    city: np.ndarray
    phone: list[str]  # national format, 10 digits, as customers type them
    email: list[str | None]
    zalo_id: list[str | None]
    facebook_id: list[str | None]


def user_id(index: int) -> str:
    """The shop's customer code: KH0000001, KH0000002, ... (khách hàng = customer)."""
    return f"KH{index + 1:07d}"


def phone_number(index: int, seed: int) -> str:
    """A valid 10-digit mobile number, distinct for every index below 330 million."""
    number = (index * _PHONE_STEP + seed * 7_777_777 + 1_234_567) % _PHONE_SPACE
    return f"{MOBILE_PREFIXES[number // 10**7]}{number % 10**7:07d}"


def _email(full_name: str, index: int, style: int, yy: int, domain: str) -> str:
    parts = fold(full_name).split()
    family, given = parts[0], parts[-1]
    local = (f"{given}{family}{index + 1}", f"{given}.{family}.{index + 1}", f"{family}{given}{yy:02d}.{index + 1}",
             f"{given}{yy:02d}{family}{index + 1}")[style]
    return f"{local}@{domain}"


def draw_people(rng: np.random.Generator, start: int, n: int, seed: int, today: date,
                channels: np.ndarray) -> People:
    """Personal data for customers start .. start+n-1; `channels` (acquisition) shape who has which ids."""
    index = np.arange(start, start + n)
    gender = np.where(rng.random(n) < 0.62, "female", "male")
    family = _choice(rng, FAMILY, n)
    middle = np.empty(n, dtype=object)
    given = np.empty(n, dtype=object)
    for g in ("male", "female"):
        mask = gender == g
        k = int(mask.sum())
        middle[mask] = _choice(rng, MIDDLE[g], k)
        given[mask] = np.array(GIVEN[g], dtype=object)[rng.integers(0, len(GIVEN[g]), k)]
    names = [f"{f} {m} {g}" if m != g else f"{f} {g}" for f, m, g in zip(family, middle, given, strict=True)]

    band = rng.choice(len(_AGE_BANDS), size=n, p=[b[2] for b in _AGE_BANDS])
    lo = np.array([_AGE_BANDS[b][0] for b in band])
    hi = np.array([_AGE_BANDS[b][1] for b in band])
    age_days = (lo + rng.random(n) * (hi - lo + 1)) * 365.25
    birthdays = [today - timedelta(days=int(d)) for d in age_days]

    city = _choice(rng, CITIES, n)
    # Who shares what: emails are less central in Vietnam than Zalo; Facebook ids come with Facebook leads.
    has_email = rng.random(n) < 0.45
    has_zalo = rng.random(n) < np.where(channels == "zalo", 0.95, 0.45)
    has_fb = rng.random(n) < np.where(channels == "facebook", 0.9, 0.2)
    style = rng.integers(0, 4, n)
    domain = rng.choice(len(EMAIL_DOMAINS), size=n, p=_EMAIL_DOMAIN_P)
    zalo = rng.integers(10**17, 9 * 10**17, n, dtype=np.int64)
    fb = rng.integers(10**15, 9 * 10**15, n, dtype=np.int64)
    return People(
        index=index,
        user_id=[user_id(int(i)) for i in index],
        full_name=names,
        gender=gender,
        birthday=birthdays,
        city=city,
        phone=[phone_number(int(i), seed) for i in index],
        email=[_email(names[k], int(index[k]), int(style[k]), birthdays[k].year % 100, EMAIL_DOMAINS[domain[k]])
               if has_email[k] else None for k in range(n)],
        zalo_id=[str(zalo[k]) if has_zalo[k] else None for k in range(n)],
        facebook_id=[str(fb[k]) if has_fb[k] else None for k in range(n)],
    )
