"""Vietnamese for the reasons stored on messages and broadcasts, shown to staff on the dashboard.

Reasons are stored in English, as they were written (the API, logs and support tickets read the same
text everywhere); the pages show them in the reader's language. A reason is matched against the
English patterns below, most specific first; a placeholder is kept as it is (an address, a code, the
provider's own words) except ``{reason}``, which is itself a reason and translated the same way. Text
clm did not write (a provider's message, a Jinja error) stays as it came.

Every reason an adapter, a guardrail or the outbox writes has its pattern here; ``tests/channels/
test_reasons.py`` checks the code tables and the composed reasons against it.
"""

from __future__ import annotations

import re
from functools import cache

# Whole reasons, word for word: the providers' code tables and the fixed sentences.
EXACT: dict[str, str] = {
    # eSMS: the account
    "eSMS refused the credentials: check CLM_ESMS_API_KEY and CLM_ESMS_SECRET_KEY":
        "eSMS từ chối thông tin đăng nhập: kiểm tra CLM_ESMS_API_KEY và CLM_ESMS_SECRET_KEY",
    "the eSMS account has no price list yet: ask eSMS to set one up":
        "tài khoản eSMS chưa có bảng giá: đề nghị eSMS thiết lập",
    "the eSMS balance is too low: top up the account": "số dư eSMS không đủ: hãy nạp thêm tiền vào tài khoản",
    "the brandname is not registered with eSMS: check CLM_ESMS_BRANDNAME":
        "brandname chưa được đăng ký với eSMS: kiểm tra CLM_ESMS_BRANDNAME",
    "eSMS refused this server's IP address: add it to the account's whitelist":
        "eSMS từ chối địa chỉ IP của máy chủ này: thêm nó vào danh sách IP được phép của tài khoản",
    "eSMS is still processing an earlier request": "eSMS vẫn đang xử lý một yêu cầu trước đó",
    # eSMS: the message
    "eSMS blocks this phone number": "eSMS chặn số điện thoại này",
    "eSMS does not know this message id": "eSMS không biết mã tin nhắn này",
    "the phone number has a format eSMS does not accept": "số điện thoại có định dạng eSMS không chấp nhận",
    "eSMS rejected the request data": "eSMS từ chối dữ liệu của yêu cầu",
    "eSMS rejected the hashed phone": "eSMS từ chối số điện thoại đã băm",
    "eSMS does not support this message type": "eSMS không hỗ trợ loại tin nhắn này",
    "the text does not match a CSKH template registered for the brandname":
        "nội dung không khớp mẫu CSKH nào đã đăng ký cho brandname",
    "the brandname is not registered with this recipient's carrier":
        "brandname chưa được đăng ký với nhà mạng của người nhận",
    "eSMS rejected the payload": "eSMS từ chối nội dung yêu cầu",
    "the message type is missing": "thiếu loại tin nhắn",
    "eSMS does not support this service": "eSMS không hỗ trợ dịch vụ này",
    "eSMS refused the message": "eSMS từ chối tin nhắn",
    "eSMS is rate limiting requests": "eSMS đang giới hạn tần suất yêu cầu",
    "eSMS rejected the message": "eSMS từ chối tin nhắn",
    "eSMS could not deliver the message": "eSMS không chuyển được tin nhắn",
    # SpeedSMS
    "SpeedSMS locked this server's IP address": "SpeedSMS đã khóa địa chỉ IP của máy chủ này",
    "the SpeedSMS account is blocked": "tài khoản SpeedSMS bị khóa",
    "the SpeedSMS account may not use the API": "tài khoản SpeedSMS không được phép dùng API",
    "the SpeedSMS balance is too low: top up the account": "số dư SpeedSMS không đủ: hãy nạp thêm tiền vào tài khoản",
    "SpeedSMS had an internal error": "SpeedSMS gặp lỗi nội bộ",
    "SpeedSMS rejected the parameters": "SpeedSMS từ chối các tham số",
    "the phone number is not valid for SpeedSMS": "số điện thoại không hợp lệ với SpeedSMS",
    "SpeedSMS does not support the text's encoding": "SpeedSMS không hỗ trợ bảng mã của nội dung",
    "the text is too long for SpeedSMS": "nội dung quá dài với SpeedSMS",
    "SpeedSMS refused the message": "SpeedSMS từ chối tin nhắn",
    # Zalo
    "Zalo had an unknown error": "Zalo gặp lỗi không xác định",
    "the Zalo application is invalid": "ứng dụng Zalo không hợp lệ",
    "the Zalo application does not exist": "ứng dụng Zalo không tồn tại",
    "the Zalo application is not activated": "ứng dụng Zalo chưa được kích hoạt",
    "the Zalo app secret key is invalid": "khóa bí mật (app secret) của ứng dụng Zalo không hợp lệ",
    "the Zalo application is not linked to an OA": "ứng dụng Zalo chưa liên kết với OA nào",
    "the Zalo access token is invalid or expired: renew CLM_ZALO_ACCESS_TOKEN, or set CLM_ZALO_APP_SECRET, "
    "CLM_ZALO_REFRESH_TOKEN and CLM_ZALO_TOKEN_FILE so clm refreshes it":
        "access token Zalo không hợp lệ hoặc đã hết hạn: gia hạn CLM_ZALO_ACCESS_TOKEN, hoặc đặt "
        "CLM_ZALO_APP_SECRET, CLM_ZALO_REFRESH_TOKEN và CLM_ZALO_TOKEN_FILE để clm tự làm mới",
    "Zalo does not support this method": "Zalo không hỗ trợ phương thức này",
    "the message id is invalid": "mã tin nhắn không hợp lệ",
    "the phone number is not valid for Zalo": "số điện thoại không hợp lệ với Zalo",
    "the ZNS template id is not valid": "mã mẫu ZNS không hợp lệ",
    "the recipient's Zalo version cannot show ZNS messages": "phiên bản Zalo của người nhận không hiển thị được tin ZNS",
    "the ZNS template data is empty": "dữ liệu mẫu ZNS trống",
    "the recipient is inactive on Zalo or refused the message": "người nhận không hoạt động trên Zalo hoặc đã từ chối tin",
    "the phone number has no Zalo account": "số điện thoại không có tài khoản Zalo",
    "Zalo refused the message": "Zalo từ chối tin nhắn",
    "Zalo is rate limiting requests": "Zalo đang giới hạn tần suất yêu cầu",
    "Zalo answered without a numeric error code": "Zalo trả lời mà không có mã lỗi dạng số",
    "a ZNS message needs a template id (data.template_id)": "tin ZNS cần mã mẫu (data.template_id)",
    "ZNS template data must be an object of parameter -> value": "dữ liệu mẫu ZNS phải là đối tượng tham số -> giá trị",
    "the customer unfollowed the Zalo OA": "khách hàng đã bỏ quan tâm Zalo OA",
    # Messenger
    "the customer has no Messenger id (PSID)": "khách hàng chưa có mã Messenger (PSID)",
    "the Messenger message has no text": "tin Messenger không có nội dung",
    # SMS, email, webhooks, templates
    "the SMS has no text": "tin SMS không có nội dung",
    "the template has no content": "mẫu không có nội dung",
    "provider.zns_template_id: a Zalo ZNS message needs the template id Zalo approved":
        "provider.zns_template_id: tin Zalo ZNS cần mã mẫu đã được Zalo duyệt",
    # the outbox, broadcasts, the customer's actions
    "the broadcast was cancelled": "chiến dịch gửi hàng loạt đã bị hủy",
    "cancelled": "đã hủy",
    "the segment was deleted before the broadcast was sent": "phân khúc đã bị xóa trước khi chiến dịch được gửi",
    "the customer replied": "khách hàng đã trả lời",
    "unsubscribe link": "liên kết hủy đăng ký",
    "one-click unsubscribe": "hủy đăng ký một chạm",
    "preference page": "trang tùy chọn nhận tin",
    # the demo's played-back history (clm.demo.journeys)
    "demo: the carrier did not deliver": "demo: nhà mạng không chuyển được tin",
}

# Patterns: the English with {placeholders}, and the Vietnamese. Most specific first.
PATTERNS: list[tuple[str, str]] = [
    # guardrails
    ("no consent recorded for {channel} marketing", "chưa ghi nhận sự đồng ý nhận tin tiếp thị qua {channel}"),
    ("consent for {channel} marketing was withdrawn", "khách hàng đã rút lại sự đồng ý nhận tin tiếp thị qua {channel}"),
    ("the customer refused {channel} transactional messages", "khách hàng từ chối tin giao dịch qua {channel}"),
    ("the customer refused {channel} marketing messages", "khách hàng từ chối tin tiếp thị qua {channel}"),
    ("the customer refused {channel} {purpose} messages", "khách hàng từ chối tin {purpose} qua {channel}"),
    ("the address is on the suppression list ({why})", "địa chỉ nằm trong danh sách chặn gửi ({why})"),
    ("the customer has no email address for {channel}", "khách hàng chưa có địa chỉ email cho kênh {channel}"),
    ("the customer has no phone number for {channel}", "khách hàng chưa có số điện thoại cho kênh {channel}"),
    ("the customer has no Messenger id (facebook identity) for {channel}",
     "khách hàng chưa có mã Messenger (định danh facebook) cho kênh {channel}"),
    ("the customer has no webhook URL (provider.webhook_url) for {channel}",
     "thiếu URL webhook (provider.webhook_url) cho kênh {channel}"),
    ("frequency cap: {n} marketing messages in {days} days",
     "giới hạn tần suất: {n} tin tiếp thị trong {days} ngày"),
    ("quiet hours {hours}", "giờ yên lặng {hours}"),
    ("the customer unfollowed the Zalo OA ({when})", "khách hàng đã bỏ quan tâm Zalo OA ({when})"),
    # the outbox
    ("interrupted: the worker stopped while handing the message to {provider}; it may or may not have arrived "
     "and {provider2} cannot tell duplicates apart, so it is not sent again (at most once)",
     "bị gián đoạn: worker dừng khi đang chuyển tin cho {provider}; tin có thể đã đến hoặc chưa, và {provider2} "
     "không phân biệt được tin trùng nên tin không được gửi lại (nhiều nhất một lần)"),
    ("interrupted: the worker stopped while handing the message to {provider} and the send job has no attempts "
     "left ({error}); it may or may not have arrived",
     "bị gián đoạn: worker dừng khi đang chuyển tin cho {provider} và tác vụ gửi đã hết lượt thử ({error}); "
     "tin có thể đã đến hoặc chưa"),
    ("the send job failed {n} times: {error}", "tác vụ gửi thất bại {n} lần: {error}"),
    ("no {channel} provider is configured: set {setting}", "chưa cấu hình nhà cung cấp cho kênh {channel}: đặt {setting}"),
    ("gave up after {n} attempts: {reason}", "đã ngừng sau {n} lần thử: {reason}"),
    ("attempt {n} failed, retrying: {reason}", "lần thử {n} thất bại, sẽ thử lại: {reason}"),
    ("[{code}] {reason}", "[{code}] {reason}"),
    # templates
    ("template {key!r} does not exist", "mẫu {key!r} không tồn tại"),
    ("template {key!r} is for {a}, not {b}", "mẫu {key!r} dành cho kênh {a}, không phải {b}"),
    ("template {key} v{version}: {reason}", "mẫu {key} phiên bản {version}: {reason}"),
    ("{part}: {name!r} is undefined", "{part}: biến {name!r} chưa được định nghĩa"),
    ("{part}: line {line}: {problem}", "{part}: dòng {line}: {problem}"),
    ("{part}subject: an email needs a subject", "{part}subject: email cần có tiêu đề"),
    ("{part}text: the message is empty", "{part}text: tin nhắn trống"),
    # email and webhooks
    ("the mail server closed the connection: {what}", "máy chủ thư đã đóng kết nối: {what}"),
    ("the mail server refused the login ({code}): check CLM_SMTP_URL",
     "máy chủ thư từ chối đăng nhập ({code}): kiểm tra CLM_SMTP_URL"),
    ("cannot reach the mail server {server}: {what}", "không kết nối được tới máy chủ thư {server}: {what}"),
    ("the mail server answered {code}: {what}", "máy chủ thư trả lời {code}: {what}"),
    ("the mail server reported a bounce: {what}", "máy chủ thư báo thư bị trả lại: {what}"),
    ("the webhook URL {url} is not an http(s) URL", "URL webhook {url} không phải URL http(s)"),
    ("the webhook receiver answered HTTP {status}; retrying later", "nơi nhận webhook trả lời HTTP {status}; sẽ thử lại sau"),
    ("the webhook URL redirects (HTTP {status}); configure the final URL",
     "URL webhook chuyển hướng (HTTP {status}); hãy cấu hình URL đích cuối cùng"),
    ("the webhook receiver refused the message (HTTP {status})", "nơi nhận webhook từ chối tin nhắn (HTTP {status})"),
    # HTTP providers in general
    ("{provider} did not answer within {seconds} s", "{provider} không trả lời trong vòng {seconds} giây"),
    ("could not reach {provider}: {what}", "không kết nối được tới {provider}: {what}"),
    ("{provider} answered HTTP {status}; retrying later", "{provider} trả lời HTTP {status}; sẽ thử lại sau"),
    ("{provider} answered HTTP {status} without a JSON body", "{provider} trả lời HTTP {status} nhưng không có nội dung JSON"),
    ("{provider} answered HTTP {status} without an error code", "{provider} trả lời HTTP {status} nhưng không có mã lỗi"),
    ("{provider} answered HTTP {status} without a message id", "{provider} trả lời HTTP {status} nhưng không có mã tin nhắn"),
    ("{provider} answered HTTP {status}", "{provider} trả lời HTTP {status}"),
    ("{provider} sends to Vietnamese mobile numbers only; {phone} is not one",
     "{provider} chỉ gửi tới số di động Việt Nam; {phone} không phải số như vậy"),
    # eSMS, SpeedSMS, Zalo
    ("eSMS rejected the request: {what}", "eSMS từ chối yêu cầu: {what}"),
    ("SpeedSMS is rate limiting requests (60 a minute); it resets in {s} s",
     "SpeedSMS đang giới hạn tần suất (60 yêu cầu mỗi phút); mở lại sau {s} giây"),
    ("SpeedSMS is rate limiting requests (60 a minute)", "SpeedSMS đang giới hạn tần suất (60 yêu cầu mỗi phút)"),
    ("SpeedSMS refused the token (HTTP {status}): check CLM_SPEEDSMS_TOKEN",
     "SpeedSMS từ chối token (HTTP {status}): kiểm tra CLM_SPEEDSMS_TOKEN"),
    ("SpeedSMS found the phone number invalid: {phones}", "SpeedSMS báo số điện thoại không hợp lệ: {phones}"),
    ("SpeedSMS reports status {status}: not delivered", "SpeedSMS báo trạng thái {status}: chưa chuyển được"),
    ("Zalo refused to refresh the OA token ({said}): set a new CLM_ZALO_REFRESH_TOKEN and delete the file "
     "CLM_ZALO_TOKEN_FILE names",
     "Zalo từ chối làm mới token OA ({said}): đặt CLM_ZALO_REFRESH_TOKEN mới và xóa tệp mà CLM_ZALO_TOKEN_FILE chỉ tới"),
    # Messenger
    ("not sent: {since}, and Messenger allows marketing only within 24 hours of the customer's last message "
     "(message tags may not carry promotions)",
     "không gửi: {since}; Messenger chỉ cho gửi tin tiếp thị trong 24 giờ kể từ tin nhắn cuối của khách hàng "
     "(thẻ tin nhắn không được mang nội dung khuyến mãi)"),
    ("not sent: {since}; outside the 24-hour window Messenger needs a message tag ({tags})",
     "không gửi: {since}; ngoài khung 24 giờ Messenger cần một thẻ tin nhắn ({tags})"),
    ("not sent: {since}, and {tag} is not a message tag Meta allows ({tags})",
     "không gửi: {since}; {tag} không phải thẻ tin nhắn Meta cho phép ({tags})"),
    ("not sent: {since}; the HUMAN_AGENT tag covers only 7 days after the customer's last message",
     "không gửi: {since}; thẻ HUMAN_AGENT chỉ áp dụng trong 7 ngày sau tin nhắn cuối của khách hàng"),
    ("the customer has never written to the Page", "khách hàng chưa từng nhắn tin cho Trang"),
    ("the customer last wrote to the Page {n} hours ago", "khách hàng nhắn tin cho Trang lần cuối cách đây {n} giờ"),
    ("the customer last wrote to the Page {n} days ago", "khách hàng nhắn tin cho Trang lần cuối cách đây {n} ngày"),
    ("Messenger text is limited to {max} characters; this one has {n}",
     "tin Messenger tối đa {max} ký tự; tin này có {n}"),
    ("Meta says the message is outside the allowed window ({said})", "Meta báo tin nằm ngoài khung thời gian cho phép ({said})"),
    ("the person is not available on Messenger ({said})", "người này hiện không nhận được tin trên Messenger ({said})"),
    ("the Page access token is invalid or expired: set CLM_MESSENGER_PAGE_TOKEN ({said})",
     "access token của Trang không hợp lệ hoặc đã hết hạn: đặt CLM_MESSENGER_PAGE_TOKEN ({said})"),
    ("Meta refused the call's appsecret_proof: set CLM_MESSENGER_APP_SECRET to the app's secret ({said})",
     "Meta từ chối appsecret_proof của lệnh gọi: đặt CLM_MESSENGER_APP_SECRET bằng khóa bí mật của ứng dụng ({said})"),
    ("Messenger asks to retry later ({said})", "Messenger đề nghị thử lại sau ({said})"),
    ("Messenger refused the message ({said})", "Messenger từ chối tin nhắn ({said})"),
    # inbound and broadcasts
    ("read on {channel}", "đã đọc trên {channel}"),
    ("the recipient reported it: {source}", "người nhận đã báo cáo tin: {source}"),
    ("cancelled; {n} waiting messages were not sent", "đã hủy; {n} tin đang chờ không được gửi"),
    ("stopped: {what}", "đã dừng: {what}"),
    # "<a reason clm wrote> (<the provider's code and words>)": the reason translated, the provider's words kept
    ("{reason}: {said}", "{reason}: {said}"),
    ("{reason} ({said})", "{reason} ({said})"),
]

_RECURSIVE = {"reason", "error", "since"}
_PLACEHOLDER = re.compile(r"\{(\w+)(!r)?\}")


@cache
def _compiled() -> list[tuple[re.Pattern[str], str]]:
    compiled = []
    for english, vietnamese in PATTERNS:
        regex, position = [], 0
        for m in _PLACEHOLDER.finditer(english):
            regex.append(re.escape(english[position:m.start()]))
            regex.append(f"(?P<{m.group(1)}>'.*?'|\".*?\")" if m.group(2) else f"(?P<{m.group(1)}>.+?)")
            position = m.end()
        regex.append(re.escape(english[position:]))
        compiled.append((re.compile("".join(regex), re.DOTALL), _PLACEHOLDER.sub(r"{\1}", vietnamese)))
    return compiled


def vietnamese(reason: str) -> str | None:
    """The reason in Vietnamese, or None when clm did not write it (a provider's or a library's words)."""
    if reason in EXACT:
        return EXACT[reason]
    for regex, template in _compiled():
        m = regex.fullmatch(reason)
        if m is None:
            continue
        values = m.groupdict()
        recursive = [name for name in values if name in _RECURSIVE]
        if "reason" in values and vietnamese(values["reason"]) is None and template.startswith("{reason}"):
            continue  # "<words> (<words>)" where clm wrote neither part: not ours
        for name in recursive:
            values[name] = vietnamese(values[name]) or values[name]
        return template.format(**values)
    return None


def in_language(reason: str | None, locale: str) -> str | None:
    """What staff read: the stored reason in their language (Vietnamese or as stored)."""
    if not reason or locale != "vi":
        return reason
    return vietnamese(reason) or reason
