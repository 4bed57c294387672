"""Which column of the file holds which of our fields: `--map email=E-mail`, a TOML file, or by name.

A column named like one of our fields (or a common alias, English or Vietnamese, ignoring case,
diacritics and punctuation) maps to it without being told. Columns mapped to no field are "extra":
they become custom traits (customers), order properties (orders) or event properties (events).
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from clm.imports.readers import ImportFileError
from clm.lib.text import fold

# Our fields per kind -> other names a column may carry for it (folded, underscored).
FIELDS: dict[str, dict[str, tuple[str, ...]]] = {
    "customers": {
        "external_id": ("user_id", "userid", "customer_id", "ma_khach_hang", "ma_kh", "id"),
        "email": ("e_mail", "mail", "email_address"),
        "phone": ("phone_number", "mobile", "tel", "so_dien_thoai", "dien_thoai", "sdt", "so_dt"),
        "full_name": ("name", "fullname", "ho_ten", "ho_va_ten", "ten_khach_hang"),
        "given_name": ("first_name", "firstname", "ten"),
        "family_name": ("last_name", "lastname", "ho"),
        "birthday": ("birth_date", "date_of_birth", "dob", "ngay_sinh"),
        "gender": ("sex", "gioi_tinh"),
        "city": ("tinh_thanh", "thanh_pho", "tinh_thanh_pho"),
        "zalo_id": ("zalo",),
        "facebook_id": ("facebook", "psid"),
    },
    "orders": {
        "order_id": ("orderid", "order_number", "ma_don_hang", "ma_don"),
        "external_id": ("customer_id", "customer_external_id", "ma_khach_hang", "ma_kh"),
        "user_id": ("userid",),
        "email": ("e_mail", "customer_email"),
        "phone": ("phone_number", "customer_phone", "so_dien_thoai", "sdt"),
        "placed_at": ("order_date", "created_at", "date", "timestamp", "ngay_dat", "ngay_dat_hang"),
        "total": ("revenue", "amount", "order_total", "tong_tien"),
        "currency": ("currency_code",),
        "status": ("order_status", "trang_thai"),
        "subtotal": (),
        "discount": (),
        "refunded": ("refunded_amount", "refund"),
        "shipping": ("shipping_fee",),
        "tax": (),
        "coupon": ("coupon_code",),
        "channel": ("affiliation",),
        "sku": ("product_id", "product_sku", "ma_san_pham"),
        "product_name": ("item_name", "ten_san_pham"),
        "quantity": ("qty", "so_luong"),
        "price": ("unit_price", "item_price", "don_gia"),
        "products": (),
    },
    "leads": {
        "external_id": ("lead_id", "ma_lead", "ma_khach_hang_tiem_nang", "id"),
        "name": ("full_name", "fullname", "ho_ten", "ho_va_ten", "ten_khach_hang", "ten"),
        "phone": ("phone_number", "mobile", "tel", "so_dien_thoai", "dien_thoai", "sdt", "so_dt"),
        "email": ("e_mail", "mail", "email_address"),
        "city": ("tinh_thanh", "thanh_pho", "tinh_thanh_pho"),
        "source": ("nguon", "nguon_khach"),
        "campaign": ("utm_campaign", "chien_dich"),
        "priority": ("uu_tien", "muc_do_uu_tien"),
        "owner_email": ("owner", "sales", "nguoi_phu_trach", "nhan_vien_phu_trach"),
        "message": ("note", "notes", "ghi_chu", "noi_dung", "nhu_cau"),
        "created_at": ("date", "ngay_tao", "ngay", "created"),
    },
    "events": {
        "message_id": ("messageid", "event_id"),
        "user_id": ("userid", "external_id", "customer_id"),
        "anonymous_id": ("anonymousid",),
        "email": ("e_mail",),
        "phone": ("phone_number", "so_dien_thoai", "sdt"),
        "event": ("event_name", "name"),
        "timestamp": ("time", "occurred_at", "created_at", "date"),
        "properties": (),
    },
}
KINDS = tuple(FIELDS)


def _norm(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", fold(name)).strip("_")


@dataclass
class Mapping:
    """Our field -> their column, plus which columns are extras (None: every unmapped column)."""

    kind: str
    columns: dict[str, str] = field(default_factory=dict)
    extras: list[str] | None = None
    # JSON Lines: records may differ in their keys, so each record's keys are bound on their own.
    loose: bool = False
    _template: Mapping | None = field(default=None, repr=False)  # the mapping as given, before binding
    _bound: dict[tuple[str, ...], Mapping] = field(default_factory=dict, repr=False)

    def bind(self, header: list[str], strict: bool = True) -> Mapping:
        """Complete the mapping for a file's `header`: check named columns exist, map the rest by name.

        `strict` (CSV) fails on a column the header lacks; JSON Lines records may omit keys, so not there.
        """
        known = FIELDS[self.kind]
        for ours, theirs in self.columns.items():
            if strict and theirs not in header:
                raise ImportFileError(
                    f"unknown column {theirs!r} in the mapping for {ours!r}; the file has: "
                    + ", ".join(repr(h) for h in header)
                )
        taken = set(self.columns.values())
        by_norm: dict[str, str] = {}
        for column in header:
            by_norm.setdefault(_norm(column), column)
        columns = dict(self.columns)
        for ours, aliases in known.items():
            if ours in columns:
                continue
            for name in (ours, *aliases):
                column = by_norm.get(name)
                if column is not None and column not in taken:
                    columns[ours] = column
                    taken.add(column)
                    break
        extras = self.extras
        if extras is not None:
            missing = [c for c in extras if strict and c not in header]
            if missing:
                raise ImportFileError(f"unknown column {missing[0]!r} in --traits; the file has: "
                                      + ", ".join(repr(h) for h in header))
        else:
            extras = [c for c in header if c and c not in taken]
        return Mapping(self.kind, columns, extras, loose=not strict, _template=None if strict else self)

    def read(self, values: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        """A row's (our fields, extras). Empty cells are left out; text is stripped."""
        if self.loose:
            names = tuple(values)
            bound = self._bound.get(names)
            if bound is None:
                if len(self._bound) > 256:  # a file whose every record differs: stay bounded
                    self._bound.clear()
                given = self._template or Mapping(self.kind)
                explicit = Mapping(self.kind, {k: v for k, v in given.columns.items() if v in values},
                                   None if given.extras is None else [e for e in given.extras if e in values])
                bound = self._bound[names] = explicit.bind(list(names), strict=True)
            return bound.read(values)
        ours = {}
        for name, column in self.columns.items():
            value = values.get(column)
            if isinstance(value, str):
                value = value.strip()
            if value is not None and value != "":
                ours[name] = value
        extra = {}
        for column in self.extras or ():
            value = values.get(column)
            if isinstance(value, str):
                value = value.strip()
            if value is not None and value != "":
                extra[column] = value
        return ours, extra

    def column(self, ours: str) -> str:
        """The file's column for our field (for error reports), or the field's own name."""
        return self.columns.get(ours, ours)


def parse_pairs(kind: str, pairs: list[str]) -> dict[str, str]:
    """`--map ours=theirs` options -> {ours: theirs}; raises ImportFileError on a malformed one."""
    out = {}
    for pair in pairs:
        ours, sep, theirs = pair.partition("=")
        ours, theirs = ours.strip(), theirs.strip()
        if not sep or not ours or not theirs:
            raise ImportFileError(f"--map {pair!r}: write it as our_field=Their Column, e.g. email=E-mail")
        out[ours] = theirs
    _check_fields(kind, out)
    return out


def load_mapping_file(kind: str, path: str | Path) -> tuple[dict[str, str], list[str] | None]:
    """Read a TOML mapping: `ours = "Their Column"` lines (or a [columns] table), optional `traits = [...]`."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8-sig"))
    except FileNotFoundError:
        raise ImportFileError(f"mapping file {path}: no such file") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ImportFileError(f"mapping file {path} is not valid TOML: {exc}") from None
    table = data.get(kind) if isinstance(data.get(kind), dict) else data
    columns = {k: v for k, v in table.items() if isinstance(v, str)}
    if isinstance(table.get("columns"), dict):
        columns.update(table["columns"])
    traits = table.get("traits", table.get("extras"))
    if traits is not None and not (isinstance(traits, list) and all(isinstance(t, str) for t in traits)):
        raise ImportFileError(f"mapping file {path}: traits must be a list of column names")
    _check_fields(kind, columns, str(path))
    return columns, traits


def _check_fields(kind: str, columns: dict[str, Any], where: str = "--map") -> None:
    for ours, theirs in columns.items():
        if ours not in FIELDS[kind]:
            raise ImportFileError(
                f"{where}: {ours!r} is not a field of {kind}; use one of: {', '.join(FIELDS[kind])}"
            )
        if not isinstance(theirs, str) or not theirs:
            raise ImportFileError(f"{where}: the column for {ours!r} must be a column name")


def build_mapping(kind: str, pairs: list[str] | None = None, mapping_file: str | Path | None = None,
                  traits: str | list[str] | None = None) -> Mapping:
    """The mapping from the CLI's options: the file first, then --map entries override it."""
    columns: dict[str, str] = {}
    extras: list[str] | None = None
    if mapping_file:
        columns, extras = load_mapping_file(kind, mapping_file)
    columns.update(parse_pairs(kind, pairs or []))
    if isinstance(traits, str):
        traits = [t.strip() for t in traits.split(",") if t.strip()]
    if traits:
        extras = list(traits)
    return Mapping(kind, columns, extras)
