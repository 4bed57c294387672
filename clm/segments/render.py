"""A rule tree as one line people read, in Vietnamese or English (the UI and the API show it)."""

from __future__ import annotations

from typing import Any

from clm.segments import rules as r

WORDS: dict[str, dict[str, str]] = {
    "en": {
        "and": " and ", "or": " or ", "not": "not ", "eq": "is", "ne": "is not", "contains": "contains",
        "not_contains": "does not contain", "starts_with": "starts with", "ends_with": "ends with", "in": "is one of",
        "not_in": "is none of", "exists": "is known", "not_exists": "is unknown", "gt": ">", "gte": "≥", "lt": "<",
        "lte": "≤", "between": "is between", "on": "is on", "before": "is before", "after": "is after",
        "within_last_days": "is within the last {n} days", "more_than_days_ago": "is more than {n} days ago",
        "within_next_days": "is within the next {n} days", "anniversary_within_days": "comes round within {n} days",
        "is_true": "is yes", "is_false": "is no", "stage_in": "stage is {s}", "stage_not_in": "stage is not {s}",
        "stage_entered": "entered stage {s} in the last {n} days",
        "at_least": "did {e} at least {n} times", "at_most": "did {e} at most {n} times",
        "exactly": "did {e} exactly {n} times", "never": "did not do {e}", "ever": "",
        "last_days": " in the last {n} days", "since": " since {a}", "until": " until {b}",
        "whose": " whose ", "order_count": "number of orders", "order_revenue": "total spend",
        "order_average_order_value": "average order value", "order_first_order_at": "first order",
        "order_last_order_at": "last order", "bought_sku": "bought product {x}", "bought_category": "bought from {x}",
        "consent": "agreed to {p} by {c}", "segment": "is in segment {x}", "trait": "trait {x}",
        "property": "{x}", "loyalty_tier": "loyalty tier", "loyalty_available": "redeemable points",
        "loyalty_lifetime": "lifetime points", "loyalty_expiring": "points expiring within {d} days",
    },
    "vi": {
        "and": " và ", "or": " hoặc ", "not": "không phải ", "eq": "là", "ne": "không là", "contains": "chứa",
        "not_contains": "không chứa", "starts_with": "bắt đầu bằng", "ends_with": "kết thúc bằng", "in": "thuộc",
        "not_in": "không thuộc", "exists": "đã biết", "not_exists": "chưa biết", "gt": ">", "gte": "≥", "lt": "<",
        "lte": "≤", "between": "trong khoảng", "on": "vào ngày", "before": "trước", "after": "sau",
        "within_last_days": "trong {n} ngày qua", "more_than_days_ago": "cách đây hơn {n} ngày",
        "within_next_days": "trong {n} ngày tới", "anniversary_within_days": "đến dịp trong {n} ngày tới",
        "is_true": "là có", "is_false": "là không", "stage_in": "giai đoạn là {s}", "stage_not_in": "giai đoạn không là {s}",
        "stage_entered": "vào giai đoạn {s} trong {n} ngày qua",
        "at_least": "đã {e} ít nhất {n} lần", "at_most": "đã {e} nhiều nhất {n} lần",
        "exactly": "đã {e} đúng {n} lần", "never": "chưa {e}", "ever": "",
        "last_days": " trong {n} ngày qua", "since": " từ {a}", "until": " đến {b}",
        "whose": " có ", "order_count": "số đơn hàng", "order_revenue": "tổng chi tiêu",
        "order_average_order_value": "giá trị đơn trung bình", "order_first_order_at": "đơn đầu tiên",
        "order_last_order_at": "đơn gần nhất", "bought_sku": "đã mua sản phẩm {x}", "bought_category": "đã mua nhóm {x}",
        "consent": "đồng ý nhận {p} qua {c}", "segment": "thuộc phân khúc {x}", "trait": "thuộc tính {x}",
        "property": "{x}", "loyalty_tier": "hạng thành viên", "loyalty_available": "điểm có thể dùng",
        "loyalty_lifetime": "tổng điểm tích lũy", "loyalty_expiring": "điểm hết hạn trong {d} ngày tới",
    },
}
FIELD_NAMES = {
    "en": {"email": "email", "phone": "phone", "full_name": "name", "given_name": "given name",
           "family_name": "family name", "gender": "gender", "city": "city", "external_id": "external id",
           "birthday": "birthday", "created_at": "signed up", "first_seen_at": "first seen", "last_seen_at": "last seen",
           "rfm_segment": "RFM segment", "r_score": "R score", "f_score": "F score", "m_score": "M score",
           "p_alive": "P(alive)", "predicted_clv_12m": "predicted 12-month CLV", "churn_risk": "churn risk"},
    "vi": {"email": "email", "phone": "số điện thoại", "full_name": "họ tên", "given_name": "tên",
           "family_name": "họ", "gender": "giới tính", "city": "thành phố", "external_id": "mã ngoài",
           "birthday": "sinh nhật", "created_at": "ngày đăng ký", "first_seen_at": "lần đầu thấy",
           "last_seen_at": "lần cuối thấy", "rfm_segment": "nhóm RFM", "r_score": "điểm R", "f_score": "điểm F",
           "m_score": "điểm M", "p_alive": "P(còn mua)", "predicted_clv_12m": "CLV dự báo 12 tháng",
           "churn_risk": "nguy cơ rời bỏ"},
}


def render(node: Any, locale: str = "en", segment_names: dict[int, str] | None = None) -> str:
    """One line for the tree: "city is Huế and did Product Viewed at least 2 times in the last 30 days"."""
    words = WORDS.get(locale, WORDS["en"])
    return _node(node, words, FIELD_NAMES.get(locale, FIELD_NAMES["en"]), segment_names or {}, top=True)


def _node(node: Any, w: dict, names: dict, segments: dict, top: bool = False) -> str:
    if isinstance(node, r.All | r.AnyOf):
        children = node.all if isinstance(node, r.All) else node.any
        text = (w["and"] if isinstance(node, r.All) else w["or"]).join(_node(c, w, names, segments) for c in children)
        return text if top or len(children) == 1 else f"({text})"
    if isinstance(node, r.Not):
        return w["not"] + "(" + _node(node.not_, w, names, segments, top=True) + ")"
    return _condition(node, w, names, segments)


def _value(v: Any) -> str:
    if isinstance(v, list):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    if isinstance(v, str):
        return f"“{v}”"
    return str(v)


def _compare(subject: str, c: r.Comparison, w: dict) -> str:
    op = w[c.op]
    if "{n}" in op:
        return f"{subject} {op.format(n=c.value)}"
    if c.op in ("exists", "not_exists", "is_true", "is_false"):
        return f"{subject} {op}"
    if c.op == "between":
        return f"{subject} {op} {_value(c.value[0])} – {_value(c.value[1])}"
    return f"{subject} {op} {_value(c.value)}"


def _window(window: r.Window | None, w: dict) -> str:
    if window is None:
        return w["ever"]
    if window.last_days:
        return w["last_days"].format(n=window.last_days)
    return (w["since"].format(a=window.since) if window.since else "") + (
        w["until"].format(b=window.until) if window.until else "")


def _condition(c: Any, w: dict, names: dict, segments: dict) -> str:
    if isinstance(c, r.ProfileCondition):
        subject = w["trait"].format(x=c.field[7:]) if c.field.startswith("traits.") else names[c.field]
        return _compare(subject, c, w)
    if isinstance(c, r.StageCondition):
        return w[f"stage_{c.op}"].format(s=", ".join(c.stages))
    if isinstance(c, r.StageEnteredCondition):
        return w["stage_entered"].format(s=c.stage, n=c.within_days)
    if isinstance(c, r.EventCondition):
        event = f"“{c.name}”"
        if c.where:
            event += w["whose"] + w["and"].join(_compare(w["property"].format(x=f.property), f, w) for f in c.where)
        head = w["never"].format(e=event) if c.op == "exactly" and c.count == 0 else w[c.op].format(e=event, n=c.count)
        return head + _window(c.window, w)
    if isinstance(c, r.OrdersCondition):
        return _compare(w[f"order_{c.metric}"], c, w)
    if isinstance(c, r.BoughtCondition):
        text = w["bought_sku"].format(x=f"“{c.sku}”") if c.sku else w["bought_category"].format(x=f"“{c.category}”")
        return text + _window(c.window, w)
    if isinstance(c, r.ScoreCondition):
        return _compare(names[c.field], c, w)
    if isinstance(c, r.LoyaltyCondition):
        return _compare(w[f"loyalty_{c.field}"].format(d=c.within_days), c, w)
    if isinstance(c, r.ConsentCondition):
        return w["consent"].format(p=c.purpose, c=c.channel)
    if isinstance(c, r.SegmentCondition):
        return w["segment"].format(x=f"“{segments.get(c.segment_id, '#' + str(c.segment_id))}”")
    raise TypeError(c)
