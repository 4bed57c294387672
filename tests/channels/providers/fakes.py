"""Local stand-ins for the messaging providers: real HTTP servers on a port, in a thread.

Each fake checks every request the way PROVIDERS.md says the real API would (method, path, auth,
body fields, phone format) and answers as the provider does: its own error codes for bad requests.
Every failed check is also kept in ``violations`` so a test can say which rule was broken.
A fake can be switched to answer 5xx (``fail_with``), garbage, or to hang until the client gives up.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # lower-case names
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)


Answer = tuple[int, dict[str, str], bytes]


def as_json(status: int, data: Any, headers: dict[str, str] | None = None) -> Answer:
    return status, {"Content-Type": "application/json", **(headers or {})}, json.dumps(data).encode()


class FakeServer:
    """The HTTP plumbing; subclasses implement ``answer(request)``."""

    def __init__(self) -> None:
        self.requests: list[Request] = []
        self.violations: list[str] = []
        self.fail_with: int | None = None  # answer this HTTP status to everything
        self.garbage = False  # answer 200 with a non-JSON body
        self.hang = False  # never answer until the test ends (the client times out)
        self._release = threading.Event()
        self._server: ThreadingHTTPServer | None = None

    def answer(self, request: Request) -> Answer:  # pragma: no cover - overridden
        raise NotImplementedError

    def violation(self, rule: str) -> None:
        self.violations.append(rule)

    def _dispatch(self, request: Request) -> Answer:
        self.requests.append(request)
        if self.hang:
            self._release.wait(10)
            return as_json(200, {})
        if self.fail_with:
            return self.fail_with, {"Content-Type": "text/html"}, b"<html>Bad gateway</html>"
        if self.garbage:
            return 200, {"Content-Type": "text/html"}, b"<html>maintenance</html>"
        return self.answer(request)

    def __enter__(self) -> FakeServer:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            # The status line and headers, then the body, leave in two writes: with Nagle's algorithm on,
            # the body waited for the client's delayed ACK, 40 ms a request (no real provider does that).
            disable_nagle_algorithm = True

            def _handle(self) -> None:
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                request = Request(self.command, parts.path, {k: v[-1] for k, v in parse_qs(parts.query).items()},
                                  {k.lower(): v for k, v in self.headers.items()}, body)
                status, headers, payload = fake._dispatch(request)
                try:
                    self.send_response(status)
                    for name, value in headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (a timeout test)

            do_GET = do_POST = do_PUT = _handle

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, args=(0.02,), daemon=True).start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._release.set()
        assert self._server is not None
        self._server.shutdown()
        self._server.server_close()

    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"


class EsmsFake(FakeServer):
    """eSMS SendMultipleMessage_V4_post_json (PROVIDERS.md section 1)."""

    PATH = "/MainService.svc/json/SendMultipleMessage_V4_post_json/"

    def __init__(self, api_key: str, secret_key: str, brandname: str, template: str = r".*") -> None:
        super().__init__()
        self.api_key, self.secret_key, self.brandname = api_key, secret_key, brandname
        self.template = re.compile(template, re.S)
        self.request_ids: set[str] = set()
        self.code: str | None = None  # force this CodeResult (a provider-side refusal)

    def answer(self, r: Request) -> Answer:
        if r.method != "POST" or r.path != self.PATH:
            self.violation(f"{r.method} {r.path}")
            return 404, {}, b"Endpoint not found."
        if "application/json" not in r.headers.get("content-type", ""):
            self.violation("content-type is not JSON")
        try:
            body = r.json
        except ValueError:
            self.violation("body is not JSON")
            return as_json(200, {"error": "Invalid request"})
        if body.get("ApiKey") != self.api_key or body.get("SecretKey") != self.secret_key:
            self.violation("credentials")
            return as_json(200, {"CodeResult": "101", "ErrorMessage": "Authorize Failed"})
        for name in ("Phone", "Content", "SmsType"):
            if not body.get(name):
                self.violation(f"{name} missing")
                return as_json(200, {"CodeResult": "110", "ErrorMessage": f"{name} is required"})
        if not re.fullmatch(r"0\d{9}", str(body["Phone"])):
            self.violation(f"phone {body['Phone']!r}")
            return as_json(200, {"CodeResult": "108", "ErrorMessage": "Phone invalid"})
        if str(body["SmsType"]) != "2":
            self.violation(f"SmsType {body['SmsType']!r}")
        for flag in ("IsUnicode", "Sandbox"):
            if flag in body and str(body[flag]) not in ("0", "1"):
                self.violation(f"{flag} {body[flag]!r}")
        if body.get("Brandname") != self.brandname:
            return as_json(200, {"CodeResult": "104", "ErrorMessage": "Brand name code is not exist"})
        if not self.template.fullmatch(body["Content"]):
            return as_json(200, {"CodeResult": "146", "ErrorMessage": "Sai template Brandname CSKH",
                                 "SMSID": "x"})
        request_id = body.get("RequestId")
        if request_id is not None and len(str(request_id)) > 50:
            self.violation("RequestId longer than 50")
        if request_id in self.request_ids:
            return as_json(200, {"CodeResult": "124", "ErrorMessage": "Request exist 1", "SendStatus": "5"})
        if self.code:
            return as_json(200, {"CodeResult": self.code, "ErrorMessage": "forced"})
        if request_id:
            self.request_ids.add(request_id)
        return as_json(200, {"CodeResult": "100", "CountRegenerate": 0, "SMSID": f"sms-{len(self.requests)}"})


def esms_mo_query(*, cpid: str, private_key: str, sender: str, content: str, smsid: str,
                  receiver_time: str = "20260302093000", service_number: str = "8079", hex_sign: bool = False) -> dict:
    """The query eSMS sends to a partner's receive_mo URL when a customer texts the short code
    (eSMS's "Kết nối đầu số ngắn"): sign = base64(MD5(cpid + smsid + content + receiverTime + key)),
    as the doc's sample code computes it (hex_sign: as its formula reads)."""
    digest = hashlib.md5((cpid + smsid + content + receiver_time + private_key).encode("utf-8")).digest()
    sign = digest.hex() if hex_sign else base64.b64encode(digest).decode()
    return {"sender": sender, "content": content, "serviceNumber": service_number,
            "keyword": content.split(" ", 1)[0] if content else "", "sign": sign, "cpid": cpid, "smsid": smsid,
            "receiverTime": receiver_time}


class SpeedSmsFake(FakeServer):
    """SpeedSMS POST /index.php/sms/send (PROVIDERS.md section 2)."""

    PATH = "/index.php/sms/send"

    def __init__(self, token: str, limit_per_minute: int = 60) -> None:
        super().__init__()
        self.token = token
        self.limit = limit_per_minute
        self.code: str | None = None

    def answer(self, r: Request) -> Answer:
        if r.method != "POST" or r.path != self.PATH:
            self.violation(f"{r.method} {r.path}")
            return 404, {}, b"Not found"
        auth = r.headers.get("authorization", "")
        user = ""
        if auth.startswith("Basic "):
            user = base64.b64decode(auth[6:]).decode().split(":", 1)[0]
        if user != self.token:
            self.violation("basic auth")
            return as_json(401, {"status": "error", "code": "009", "message": "Unauthorized"})
        if len(self.requests) > self.limit:
            return as_json(429, {"name": "Too Many Requests", "message": "Rate limit exceeded.", "code": 0,
                                 "status": 429}, {"X-Rate-Limit-Reset": "42"})
        body = r.json
        to = body.get("to")
        if not isinstance(to, list) or not 0 < len(to) <= 100:
            self.violation(f"to {to!r}")
            return as_json(200, {"status": "error", "code": "101", "message": "to is required"})
        invalid = [p for p in to if not re.fullmatch(r"(84|0)\d{9}", str(p))]
        if invalid:
            self.violation(f"phones {invalid!r}")
            if len(invalid) == len(to):
                return as_json(200, {"status": "error", "code": "105", "message": "Phone invalid",
                                     "invalidPhone": invalid})
        if not body.get("content"):
            self.violation("content")
            return as_json(200, {"status": "error", "code": "101", "message": "content is required"})
        sms_type = body.get("sms_type")
        if not isinstance(sms_type, int) or not 1 <= sms_type <= 8:
            self.violation(f"sms_type {sms_type!r}")
            return as_json(200, {"status": "error", "code": "101", "message": "sms_type invalid"})
        if sms_type in (3, 5, 7, 8) and not body.get("sender"):
            self.violation("sender")
            return as_json(200, {"status": "error", "code": "101", "message": "sender is required"})
        if self.code:
            return as_json(200, {"status": "error", "code": self.code, "message": "forced", "invalidPhone": []})
        return as_json(200, {"status": "success", "code": "00",
                             "data": {"tranId": 1000 + len(self.requests), "totalSMS": len(to), "totalPrice": 250,
                                      "invalidPhone": invalid}})


class ZaloFake(FakeServer):
    """ZNS POST /message/template (PROVIDERS.md section 3). Answers are always HTTP 200."""

    PATH = "/message/template"

    def __init__(self, token: str, templates: dict[str, set[str]], zalo_phones: set[str]) -> None:
        super().__init__()
        self.token = token
        self.templates = templates
        self.zalo_phones = zalo_phones
        self.code: int | None = None
        self.code_message = "forced"

    def _error(self, code: int, message: str) -> Answer:
        return as_json(200, {"error": code, "message": message})

    def answer(self, r: Request) -> Answer:
        if r.method != "POST" or r.path != self.PATH:
            self.violation(f"{r.method} {r.path}")
            return self._error(-106, "Method unsupported")
        if r.headers.get("access_token") != self.token:
            self.violation("access_token header")
            return self._error(-124, "Access token is invalid")
        body = r.json
        phone = str(body.get("phone", ""))
        if not re.fullmatch(r"\+?84\d{9}", phone):
            self.violation(f"phone {phone!r}")
            return self._error(-108, "Phone number invalid")
        params = self.templates.get(body.get("template_id"))
        if params is None or not isinstance(body.get("template_id"), str):
            return self._error(-109, "Template ID invalid")
        data = body.get("template_data")
        if not data:
            return self._error(-111, "Template data empty")
        if set(data) != params or not all(isinstance(v, str) for v in data.values()):
            self.violation(f"template_data {data!r}")
            return self._error(-112, "Template data invalid")
        tracking = body.get("tracking_id")
        if not tracking or len(tracking) > 48:
            self.violation(f"tracking_id {tracking!r}")
            return self._error(-100, "tracking_id invalid")
        if phone.lstrip("+") not in self.zalo_phones:
            return self._error(-118, "Zalo account not existed")
        if self.code is not None:
            return self._error(self.code, self.code_message)
        return as_json(200, {"error": 0, "message": "Success",
                             "data": {"msg_id": f"zmsg{len(self.requests)}", "sent_time": "1626926349402",
                                      "sending_mode": "1", "quota": {"dailyQuota": "500", "remainingQuota": "499"}}})


class MessengerFake(FakeServer):
    """Graph API POST /v{N}/me/messages (PROVIDERS.md section 4), with the window rule on its clock."""

    PATH = re.compile(r"/v\d+\.\d+/(me|\d+)/messages")
    TAGS = {"CONFIRMED_EVENT_UPDATE", "POST_PURCHASE_UPDATE", "ACCOUNT_UPDATE", "HUMAN_AGENT"}

    def __init__(self, token: str, last_inbound_hours: dict[str, float], app_secret: str | None = None) -> None:
        super().__init__()
        self.token = token
        self.last_inbound_hours = last_inbound_hours  # PSID -> hours since the user last wrote
        self.app_secret = app_secret  # the app's "Require App Secret" setting: every call needs appsecret_proof

    def _error(self, status: int, code: int, message: str, subcode: int | None = None) -> Answer:
        error = {"message": message, "type": "OAuthException", "code": code, "fbtrace_id": "AbC"}
        if subcode:
            error["error_subcode"] = subcode
        return as_json(status, {"error": error})

    def answer(self, r: Request) -> Answer:
        if r.method != "POST" or not self.PATH.fullmatch(r.path):
            self.violation(f"{r.method} {r.path}")
            return self._error(404, 803, "Unknown path")
        if r.query.get("access_token") != self.token:
            self.violation("access_token")
            return self._error(400, 190, "Invalid OAuth access token.")
        if self.app_secret is not None:
            # Computed here independently of clm: HMAC-SHA256(key=app secret, message=access token), hex.
            expected = hmac.new(self.app_secret.encode(), self.token.encode(), hashlib.sha256).hexdigest()
            proof = r.query.get("appsecret_proof")
            if proof is None:
                self.violation("appsecret_proof missing")
                return self._error(400, 100, "API calls from the server require an appsecret_proof argument")
            if not hmac.compare_digest(proof, expected):
                self.violation("appsecret_proof wrong")
                return self._error(400, 100, "Invalid appsecret_proof provided in the API argument")
        body = r.json
        psid = (body.get("recipient") or {}).get("id")
        if psid not in self.last_inbound_hours:
            return self._error(400, 100, "No matching user found", 2018001)
        kind, tag = body.get("messaging_type"), body.get("tag")
        if kind not in ("RESPONSE", "UPDATE", "MESSAGE_TAG"):
            self.violation(f"messaging_type {kind!r}")
            return self._error(400, 100, "Invalid messaging_type")
        if (kind == "MESSAGE_TAG") != (tag is not None):
            self.violation(f"{kind} with tag {tag!r}")
            return self._error(400, 100, "tag and messaging_type disagree")
        if tag is not None and tag not in self.TAGS:
            self.violation(f"tag {tag!r}")
            return self._error(400, 100, "Invalid tag")
        text = (body.get("message") or {}).get("text") or ""
        if not text or len(text) > 2000:
            self.violation("text length")
            return self._error(400, 100, "text too long")
        hours = self.last_inbound_hours[psid]
        allowed = hours < 24 or (kind == "MESSAGE_TAG" and (tag != "HUMAN_AGENT" or hours < 24 * 7))
        if not allowed:
            self.violation(f"{kind} {tag} after {hours} h")
            return self._error(400, 10, "(#10) This message is sent outside of allowed window.", 2018278)
        return as_json(200, {"recipient_id": psid, "message_id": f"m_{len(self.requests)}"})


class WebhookReceiver(FakeServer):
    """A receiver of clm's outgoing webhooks: it verifies the signature itself, independently."""

    def __init__(self, secret: str, status: int = 200) -> None:
        super().__init__()
        self.secret = secret
        self.status = status
        self.seen: list[dict] = []

    def answer(self, r: Request) -> Answer:
        if r.method != "POST" or r.headers.get("content-type") != "application/json":
            self.violation(f"{r.method} {r.headers.get('content-type')}")
        timestamp = r.headers.get("x-clm-timestamp", "")
        expected = "sha256=" + hmac.new(self.secret.encode(), timestamp.encode() + b"." + r.body,
                                        hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, r.headers.get("x-clm-signature", "")):
            self.violation("signature")
            return as_json(401, {"error": "bad signature"})
        if not r.headers.get("x-clm-idempotency-key"):
            self.violation("idempotency key")
        self.seen.append(r.json)
        return self.status, {}, b""


class ZaloOAuthFake(FakeServer):
    """POST /v4/oa/access_token: form fields, the app secret in a ``secret_key`` header, refresh tokens
    that work once."""

    PATH = "/v4/oa/access_token"

    def __init__(self, app_id: str, app_secret: str, refresh_token: str) -> None:
        super().__init__()
        self.app_id, self.app_secret = app_id, app_secret
        self.valid = {refresh_token}
        self.issued = 0

    def answer(self, r: Request) -> Answer:
        if r.method != "POST" or r.path != self.PATH:
            self.violation(f"{r.method} {r.path}")
            return 404, {}, b""
        if "application/x-www-form-urlencoded" not in r.headers.get("content-type", ""):
            self.violation("not a form")
        form = {k: v[-1] for k, v in parse_qs(r.body.decode()).items()}
        if r.headers.get("secret_key") != self.app_secret or form.get("app_id") != self.app_id:
            self.violation("app credentials")
            return as_json(200, {"error": -14002, "error_name": "Invalid app", "error_description": "app invalid"})
        if form.get("grant_type") != "refresh_token" or form.get("refresh_token") not in self.valid:
            return as_json(200, {"error": -14014, "error_name": "Invalid refresh token",
                                 "error_description": "refresh token is invalid or used"})
        self.valid.discard(form["refresh_token"])
        self.issued += 1
        self.valid.add(f"refresh-{self.issued}")
        return as_json(200, {"access_token": f"access-{self.issued}", "refresh_token": f"refresh-{self.issued}",
                             "expires_in": "90000"})
