/*
 * clm web chat: a small widget the shop puts on its own pages.
 *
 *   <script src="https://clm.shop.vn/static/chat-widget.js" data-key="SITE_PUBLIC_KEY" data-lang="vi" async></script>
 *
 * The visitor is analytics.js's anonymousId (from localStorage or the ajs_anonymous_id cookie; a random id
 * kept in localStorage when the page has no analytics.js), so their chat and their browsing are one profile.
 * Messages go to /chat/<key>/messages; replies arrive live by server-sent events (/chat/<key>/stream), or
 * by polling every few seconds where EventSource is missing. Everything is put into the page as text (never
 * as HTML), styles are set through the DOM (no inline <style>, so the host page's CSP need not allow it),
 * and nothing is loaded from anywhere but the clm server that served this file.
 */
(function () {
  "use strict";
  var script = document.currentScript;
  if (!script || !script.dataset.key || window.__clmChat) return;
  window.__clmChat = true;
  var KEY = script.dataset.key;
  var BASE = new URL(script.src, location.href).origin + "/chat/" + encodeURIComponent(KEY);
  var LANG = (script.dataset.lang || document.documentElement.lang || "vi").slice(0, 2) === "en" ? "en" : "vi";
  var TEXT = {
    vi: { open: "Chat với chúng tôi", title: "Hỗ trợ trực tuyến", placeholder: "Nhập tin nhắn…", send: "Gửi",
          close: "Đóng", failed: "Chưa gửi được, thử lại nhé.", slow: "Bạn gửi nhanh quá, đợi một chút nhé.",
          you: "Bạn", agent: "Nhân viên", hello: "Xin chào! Chúng tôi có thể giúp gì cho bạn?" },
    en: { open: "Chat with us", title: "Live support", placeholder: "Type a message…", send: "Send",
          close: "Close", failed: "Not sent yet, please try again.", slow: "You are sending fast, wait a moment.",
          you: "You", agent: "Agent", hello: "Hello! How can we help?" }
  }[LANG];

  function randomId() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    var a = new Uint8Array(16);
    (window.crypto || window.msCrypto).getRandomValues(a);
    return Array.prototype.map.call(a, function (b) { return ("0" + b.toString(16)).slice(-2); }).join("");
  }
  function visitorId() {
    var given = script.dataset.anonymousId;
    if (given) return given;
    try {
      var stored = localStorage.getItem("ajs_anonymous_id");
      if (stored) return JSON.parse(stored);
    } catch (e) { /* not JSON or no storage: read on */ }
    var cookie = document.cookie.match(/(?:^|;\s*)ajs_anonymous_id=([^;]+)/);
    if (cookie) return decodeURIComponent(cookie[1]).replace(/^"|"$/g, "");
    try {
      var own = localStorage.getItem("clm_chat_visitor");
      if (!own) { own = randomId(); localStorage.setItem("clm_chat_visitor", own); }
      return own;
    } catch (e) { return randomId(); }
  }
  var VISITOR = String(visitorId());

  function el(tag, style, text) {
    var node = document.createElement(tag);
    if (style) Object.assign(node.style, style);
    if (text != null) node.textContent = text;
    return node;
  }
  var FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif";
  var root = el("div", { position: "fixed", right: "20px", bottom: "20px", zIndex: "2147483000", fontFamily: FONT,
                         fontSize: "14px", color: "#0f172a" });
  root.id = "clm-chat";
  var button = el("button", { background: "#0f766e", color: "#fff", border: "0", borderRadius: "999px",
                              padding: "12px 18px", cursor: "pointer", boxShadow: "0 4px 14px rgba(0,0,0,.2)",
                              fontFamily: FONT, fontSize: "14px" }, TEXT.open);
  button.type = "button";
  button.id = "clm-chat-open";
  var panel = el("div", { display: "none", width: "min(360px, calc(100vw - 40px))", height: "min(480px, calc(100vh - 100px))",
                          background: "#fff", borderRadius: "14px", boxShadow: "0 10px 30px rgba(0,0,0,.25)",
                          flexDirection: "column", overflow: "hidden" });
  panel.id = "clm-chat-panel";
  panel.setAttribute("role", "dialog");
  panel.setAttribute("aria-label", TEXT.title);
  var head = el("div", { background: "#0f766e", color: "#fff", padding: "12px 14px", display: "flex",
                         justifyContent: "space-between", alignItems: "center", fontWeight: "600" }, null);
  var title = el("span", null, TEXT.title);
  var close = el("button", { background: "transparent", border: "0", color: "#fff", fontSize: "18px", cursor: "pointer" }, "×");
  close.type = "button";
  close.setAttribute("aria-label", TEXT.close);
  head.appendChild(title);
  head.appendChild(close);
  var list = el("ol", { listStyle: "none", margin: "0", padding: "12px", flex: "1", overflowY: "auto", display: "flex",
                        flexDirection: "column", gap: "8px", background: "#f8fafc" });
  list.id = "clm-chat-messages";
  list.setAttribute("aria-live", "polite");
  var form = el("form", { display: "flex", gap: "8px", padding: "10px", borderTop: "1px solid #e2e8f0" });
  var input = el("textarea", { flex: "1", resize: "none", border: "1px solid #cbd5e1", borderRadius: "8px",
                               padding: "8px", fontFamily: FONT, fontSize: "14px", height: "40px" });
  input.id = "clm-chat-input";
  input.maxLength = 5000;
  input.placeholder = TEXT.placeholder;
  input.setAttribute("aria-label", TEXT.placeholder);
  var send = el("button", { background: "#0f766e", color: "#fff", border: "0", borderRadius: "8px", padding: "0 14px",
                            cursor: "pointer", fontFamily: FONT }, TEXT.send);
  send.type = "submit";
  send.id = "clm-chat-send";
  var notice = el("div", { display: "none", color: "#b91c1c", fontSize: "12px", padding: "0 12px 8px" }, "");
  form.appendChild(input);
  form.appendChild(send);
  panel.appendChild(head);
  panel.appendChild(list);
  panel.appendChild(notice);
  panel.appendChild(form);
  root.appendChild(panel);
  root.appendChild(button);

  var shown = {};
  var last = 0;
  function show(message) {
    if (shown[message.id]) return;
    shown[message.id] = true;
    last = Math.max(last, message.id);
    var mine = message.from === "visitor";
    var item = el("li", { alignSelf: mine ? "flex-end" : "flex-start", maxWidth: "80%", padding: "8px 10px",
                          borderRadius: "12px", background: mine ? "#ccfbf1" : "#fff",
                          border: mine ? "0" : "1px solid #e2e8f0", whiteSpace: "pre-wrap", overflowWrap: "anywhere" }, null);
    item.className = "clm-chat-" + (mine ? "visitor" : "agent");
    item.dataset.id = message.id;
    var who = el("div", { fontSize: "11px", color: "#64748b", marginBottom: "2px" },
                 mine ? TEXT.you : (message.author || TEXT.agent));
    var body = el("div", null, message.body);  // text, never HTML
    item.appendChild(who);
    item.appendChild(body);
    list.appendChild(item);
    list.scrollTop = list.scrollHeight;
  }
  function greet(text) {
    var item = el("li", { alignSelf: "flex-start", maxWidth: "80%", padding: "8px 10px", borderRadius: "12px",
                          background: "#fff", border: "1px solid #e2e8f0" }, text);
    list.appendChild(item);
  }
  function say(text) {
    notice.textContent = text || "";
    notice.style.display = text ? "block" : "none";
  }
  function load() {
    return fetch(BASE + "/messages?visitor=" + encodeURIComponent(VISITOR) + "&after=" + last, { credentials: "omit" })
      .then(function (r) { return r.ok ? r.json() : { messages: [] }; })
      .then(function (data) { data.messages.forEach(show); })
      .catch(function () { /* offline for now: the next poll or the stream catches up */ });
  }
  var source = null;
  var poller = null;
  function listen() {
    if (window.EventSource) {
      source = new EventSource(BASE + "/stream?visitor=" + encodeURIComponent(VISITOR) + "&after=" + last);
      source.addEventListener("message", function (event) { show(JSON.parse(event.data)); });
    } else {
      poller = setInterval(load, 4000);
    }
  }
  function post(message, attempt) {
    return fetch(BASE + "/messages", { method: "POST", credentials: "omit", headers: { "Content-Type": "application/json" },
                                      body: JSON.stringify(message) })
      .then(function (r) {
        if (r.status === 429) { say(TEXT.slow); return null; }
        if (!r.ok) throw new Error(String(r.status));
        return r.json();
      })
      .catch(function (error) {
        if (attempt < 2) return post(message, attempt + 1);  // the same id: stored once however often it arrives
        throw error;
      });
  }
  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var text = input.value.trim();
    if (!text) return;
    send.disabled = true;
    say("");
    post({ visitor: VISITOR, id: randomId().replace(/[^A-Za-z0-9_-]/g, "").slice(0, 64), body: text }, 0)
      .then(function (data) {
        if (data) { input.value = ""; show(data.message); }
      })
      .catch(function () { say(TEXT.failed); })
      .then(function () { send.disabled = false; input.focus(); });
  });
  input.addEventListener("keydown", function (event) {
    if (event.key === "Enter" && !event.shiftKey) { event.preventDefault(); form.requestSubmit ? form.requestSubmit() : send.click(); }
  });
  var started = false;
  function open() {
    panel.style.display = "flex";
    button.style.display = "none";
    if (!started) {
      started = true;
      fetch(BASE + "/config", { credentials: "omit" }).then(function (r) { return r.ok ? r.json() : {}; })
        .then(function (config) { greet((config.greeting || {})[LANG] || TEXT.hello); })
        .catch(function () { greet(TEXT.hello); })
        .then(load).then(listen);
    }
    input.focus();
  }
  button.addEventListener("click", open);
  close.addEventListener("click", function () { panel.style.display = "none"; button.style.display = "inline-block"; });
  function mount() { document.body.appendChild(root); }
  if (document.body) mount(); else document.addEventListener("DOMContentLoaded", mount);
})();
