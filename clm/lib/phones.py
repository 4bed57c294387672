"""Phone numbers normalised to E.164, with Vietnam's rules."""

from __future__ import annotations

import re

import phonenumbers

# In 2018 Vietnam moved 11-digit mobile numbers to 10 digits (Ministry of Information and
# Communications, Circular 22/2014 plan). Customers and old spreadsheets still carry the old prefixes.
_OLD_VN_PREFIXES = {
    "0162": "032", "0163": "033", "0164": "034", "0165": "035", "0166": "036", "0167": "037",
    "0168": "038", "0169": "039",
    "0120": "070", "0121": "079", "0122": "077", "0126": "076", "0128": "078",
    "0123": "083", "0124": "084", "0125": "085", "0127": "081", "0129": "082",
    "0186": "056", "0188": "058", "0199": "059",
}
_DIGITS = re.compile(r"[^\d+]")


class InvalidPhone(ValueError):
    """The text is not a valid phone number."""


def _modernise_vn(digits: str) -> str:
    if digits.startswith("+84") and len(digits) == 13:
        local = "0" + digits[3:]
    elif digits.startswith("84") and len(digits) == 12:
        local = "0" + digits[2:]
    elif digits.startswith("0") and len(digits) == 11:
        local = digits
    else:
        return digits
    new = _OLD_VN_PREFIXES.get(local[:4])
    return new + local[4:] if new else digits


def normalize_phone(raw: str, region: str = "VN") -> str:
    """Return `raw` as E.164 ("0912 345 678" -> "+84912345678") or raise InvalidPhone."""
    if raw is None or not str(raw).strip():
        raise InvalidPhone("phone is empty")
    text = str(raw).strip()
    digits = _DIGITS.sub("", text)
    if region == "VN" or digits.startswith(("+84", "84")):
        digits = _modernise_vn(digits)
    try:
        number = phonenumbers.parse(digits or text, region)
    except phonenumbers.NumberParseException as exc:
        raise InvalidPhone(f"{text!r} is not a phone number") from exc
    if not phonenumbers.is_valid_number(number):
        raise InvalidPhone(f"{text!r} is not a valid phone number")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
