"""Settings from CLM_* environment variables (and a .env file). Nothing else reads the environment."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Every setting clm reads; each is documented in docs/configuration.md."""

    model_config = SettingsConfigDict(env_prefix="CLM_", env_file=".env", extra="ignore")

    database_url: str = Field(
        "sqlite:///clm.db",
        description="SQLAlchemy URL. sqlite:///clm.db by default; postgresql+psycopg://... in production.",
    )
    timezone: str = Field("Asia/Ho_Chi_Minh", description="The business time zone for reports and birthdays.")
    default_currency: str = Field("VND", description="ISO 4217 code used when an order names none.")
    default_region: str = Field("VN", description="Region used to read phone numbers written without +country.")
    host: str = Field("127.0.0.1", description="Address `clm serve` listens on.")
    port: int = Field(8000, description="Port `clm serve` listens on.")
    workers: int = Field(1, description="Server processes `clm serve` runs. On SQLite, with more than one, a single "
                               "ingestion writer process stores what all of them accept.")
    ingest_writer_socket: str | None = Field(
        None, description="Set by `clm serve` for its server processes: the socket of the ingestion writer process.")
    ingest_writer_secret: SecretStr | None = Field(
        None, description="Set by `clm serve` for its server processes: the key that authenticates them to the writer.")
    secret_key: SecretStr = Field(
        SecretStr("dev-insecure-change-me"),
        description="Signs session cookies and CSRF tokens. Set a long random value in production.",
    )
    session_cookie_secure: bool = Field(
        False, description="Send the dashboard session cookie over HTTPS only. Set true behind TLS."
    )
    session_max_age: int = Field(14 * 24 * 3600, description="Seconds a dashboard login lasts.")
    dashboard_warm_up: bool = Field(
        True, description="Compute the overview's figures in the background when the server starts."
    )
    max_event_bytes: int = Field(32 * 1024, description="Largest accepted tracking event (Segment: 32 KB).")
    max_batch_bytes: int = Field(500 * 1024, description="Largest accepted tracking batch (Segment: 500 KB).")
    log_level: str = Field("info", description="Log level: debug, info, warning, error.")
    lifecycle_rules: Path | None = Field(
        None, description="The business's lifecycle rule file (TOML); the built-in stage model when unset."
    )
    worker_poll_seconds: float = Field(1.0, gt=0, description="How often an idle worker looks for new facts.")
    lifecycle_sweep_minutes: int = Field(
        60, ge=1, description="How often the worker moves customers whom time alone moves (at risk, churned)."
    )
    smtp_url: SecretStr | None = Field(
        None, description="Outgoing mail server: smtp://user:pass@host:587?starttls=1, or smtps://host:465 "
                          "(add verify=0 only for a test server with a self-signed certificate). Unset: no email.",
    )
    email_from: str = Field("clm <no-reply@localhost>", description="The From of every email the shop sends.")
    dkim_selector: str | None = Field(
        None, description="DKIM selector: email is signed when the selector, domain and private key are set "
                          "(the public key is published at <selector>._domainkey.<domain>).",
    )
    dkim_domain: str | None = Field(None, description="DKIM signing domain (d=); the domain of CLM_EMAIL_FROM.")
    dkim_private_key: SecretStr | None = Field(
        None, description="DKIM RSA private key in PEM form (CLM_DKIM_PRIVATE_KEY_FILE reads it from a file).",
    )
    public_url: str = Field(
        "http://127.0.0.1:8000",
        description="The address customers reach clm at: open pixels, click links and unsubscribe pages use it.",
    )
    tracking_secret: SecretStr | None = Field(
        None, description="Signs tracking, unsubscribe and preference links (HMAC). Unset: derived from CLM_SECRET_KEY.",
    )
    default_locale: str = Field("vi", description="Language of messages to customers with no locale trait: vi or en.")
    marketing_cap: int = Field(3, ge=0, description="At most this many marketing messages per customer per window.")
    marketing_cap_days: int = Field(7, ge=1, description="The frequency cap's window in days.")
    quiet_hours: str = Field(
        "21:00-08:00",
        description="Marketing is not sent in these hours (business time zone); messages wait for the end. Empty: none.",
    )
    send_max_attempts: int = Field(8, ge=1, description="Tries per message before a transient error becomes a failure.")
    render_processes: int | None = Field(
        None, ge=0, description="Processes that render a large broadcast's messages while it is queued (unset: "
        "one per CPU, at most 4; 0: render in the queueing process)."
    )
    broadcast_attribution_days: int = Field(
        7, ge=1, le=90, description="A broadcast's report counts orders its recipients placed within this many days."
    )

    # Messaging providers (docs/channels.md, "Providers"). A provider without its credentials is off.
    provider_timeout_seconds: float = Field(
        10.0, gt=0, description="Seconds clm waits for an SMS, Zalo, Messenger or webhook provider to answer."
    )
    sms_provider: str | None = Field(
        None, description="The SMS gateway that sends the sms channel: esms or speedsms (unset: the one configured)."
    )
    esms_api_key: SecretStr | None = Field(None, description="eSMS.vn ApiKey.")
    esms_secret_key: SecretStr | None = Field(None, description="eSMS.vn SecretKey.")
    esms_brandname: str | None = Field(None, description="The brandname registered with eSMS (SmsType 2).")
    esms_url: str = Field("https://rest.esms.vn", description="eSMS API base URL (tests point it at a local server).")
    esms_sandbox: bool = Field(False, description="eSMS sandbox: accepted, neither delivered nor charged.")
    esms_unicode: bool = Field(False, description="Keep Vietnamese diacritics in eSMS messages (costs more).")
    esms_callback_url: str | None = Field(
        None, description="URL eSMS calls with delivery reports. Unset: <CLM_PUBLIC_URL>/hooks/esms/<CLM_HOOKS_TOKEN> "
        "when CLM_HOOKS_TOKEN is set.",
    )
    esms_mo_cpid: str | None = Field(
        None, description="The CP id eSMS gave for two-way SMS (customers texting the short code): inbound SMS "
        "at /hooks/esms-mo must carry it."
    )
    esms_mo_private_key: SecretStr | None = Field(
        None, description="The private key eSMS gave with CLM_ESMS_MO_CPID: verifies the sign of inbound SMS."
    )
    speedsms_token: SecretStr | None = Field(None, description="SpeedSMS.vn API access token.")
    speedsms_sender: str | None = Field(None, description="SpeedSMS sender: the brandname (or device id for type 5).")
    speedsms_sms_type: int = Field(
        3, ge=1, le=8, description="SpeedSMS sms_type: 2 customer care, 3 brandname, 4 default brandname..."
    )
    speedsms_url: str = Field("https://api.speedsms.vn/index.php", description="SpeedSMS API base URL.")
    zalo_access_token: SecretStr | None = Field(None, description="Zalo OA access token for ZNS template messages.")
    zalo_zns_url: str = Field("https://business.openapi.zalo.me", description="Zalo ZNS API base URL.")
    zalo_app_id: str | None = Field(
        None, description="Zalo app id: inbound webhooks from another app are refused; needed to refresh tokens."
    )
    zalo_app_secret: SecretStr | None = Field(None, description="Zalo app secret key, for refreshing the OA token.")
    zalo_refresh_token: SecretStr | None = Field(
        None, description="The first OA refresh token; later ones are kept in CLM_ZALO_TOKEN_FILE (each works once)."
    )
    zalo_token_file: Path | None = Field(
        None, description="File where clm keeps the rotating Zalo OA tokens (shared by every worker process)."
    )
    zalo_oauth_url: str = Field("https://oauth.zaloapp.com", description="Zalo OAuth base URL (token refresh).")
    zalo_oa_secret_key: SecretStr | None = Field(
        None, description="Zalo OA secret key (webhook settings, not the app secret): verifies X-ZEvent-Signature."
    )
    messenger_page_token: SecretStr | None = Field(None, description="Facebook Page access token (Send API).")
    messenger_graph_url: str = Field(
        "https://graph.facebook.com/v25.0", description="Graph API base URL, with its version."
    )
    messenger_app_secret: SecretStr | None = Field(
        None, description="Facebook app secret: verifies X-Hub-Signature-256 on Messenger webhooks and signs "
        "Graph API calls (appsecret_proof)."
    )
    messenger_verify_token: SecretStr | None = Field(
        None, description="The verify token typed into Meta's webhook settings (GET handshake)."
    )
    webhook_signing_secret: SecretStr | None = Field(
        None, description="Signs outgoing webhooks (X-Clm-Signature, HMAC-SHA256 over timestamp.body)."
    )
    hooks_token: SecretStr | None = Field(
        None, description="Secret path segment of the eSMS and SpeedSMS report URLs (/hooks/esms/<token>)."
    )

    # Service desk email (docs/service.md, Email): mail in by SMTP or IMAP, agents' replies out by CLM_SMTP_URL.
    mail_listen_host: str = Field("127.0.0.1", description="Address `clm mail serve` (the inbound SMTP listener) "
                                                           "listens on.")
    mail_listen_port: int = Field(2525, ge=1, le=65535, description="Port `clm mail serve` listens on.")
    mail_imap_url: SecretStr | None = Field(
        None, description="Mailbox `clm mail poll` reads: imaps://user:pass@host:993/INBOX, or "
                          "imap://user:pass@host:143/INBOX?starttls=1 (verify=0 for a self-signed test server).")
    mail_max_bytes: int = Field(25_000_000, ge=1024, description="Largest inbound mail accepted, in bytes "
                                                                 "(the listener refuses larger ones with 552).")
    mail_max_attachment_bytes: int = Field(
        10_000_000, ge=1, description="Largest attachment kept, in bytes; a mail with a larger one is quarantined.")
    mail_auto_ack: bool = Field(False, description="Answer a customer's new email ticket with an automatic "
                                                   "acknowledgement naming the ticket (Auto-Submitted: auto-replied).")
    mail_auto_per_recipient: int = Field(
        3, ge=0, description="Automatic mails (acknowledgements) one address may get per hour; more are not sent.")
    mail_auto_per_ticket: int = Field(5, ge=0, description="Automatic messages one ticket may send per day.")

    # Sales (docs/sales.md): the public lead form and lead-ad webhooks.
    lead_form_per_ip: int = Field(
        10, ge=1, description="Lead form posts accepted from one IP address per 10 minutes (per server process); "
                              "more are answered 429.")
    lead_form_min_seconds: float = Field(
        2.0, ge=0, description="A lead form sent sooner than this after it was loaded is refused as a bot's.")
    lead_form_max_hours: int = Field(24, ge=1, description="A lead form's token expires after this many hours.")
    sales_first_contact_minutes: int = Field(
        15, ge=0, description="First-contact SLA: a new lead with no call, meeting or status change this many minutes "
                              "after it came in is recorded as breached and its owner and the managers are notified. "
                              "0 turns it off.")
    facebook_leads_app_secret: SecretStr | None = Field(
        None, description="App secret of the Facebook app subscribed to the Page's leadgen webhook "
                          "(X-Hub-Signature-256). Unset: CLM_MESSENGER_APP_SECRET.")
    facebook_leads_page_token: SecretStr | None = Field(
        None, description="Page access token with leads_retrieval, to read each lead from the Graph API. "
                          "Unset: CLM_MESSENGER_PAGE_TOKEN.")
    facebook_leads_verify_token: SecretStr | None = Field(
        None, description="The verify token typed into the leadgen webhook's settings. "
                          "Unset: CLM_MESSENGER_VERIFY_TOKEN.")


def _read_secret_files(values: dict) -> dict:
    """`CLM_<NAME>_FILE=/run/secrets/x` reads a secret from a file (Docker/Kubernetes secrets)."""
    import os

    for name, field in Settings.model_fields.items():
        if field.annotation is SecretStr or "SecretStr" in str(field.annotation):
            path = os.environ.get(f"CLM_{name.upper()}_FILE")
            if path and f"CLM_{name.upper()}" not in os.environ:
                values[name] = Path(path).read_text().strip()
    return values


def describe() -> list[tuple[str, str, str]]:
    """(variable, default, description) for every setting: the source of docs/configuration.md."""
    rows = []
    for name, field in Settings.model_fields.items():
        default = field.default
        if isinstance(default, SecretStr):
            default = "(set one in production)"
        rows.append((f"CLM_{name.upper()}", "" if default is None else str(default), field.description or ""))
    return rows


@lru_cache
def get_settings() -> Settings:
    return Settings(**_read_secret_files({}))
