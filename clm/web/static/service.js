// The workspace's live updates: an EventSource on /service/live (the server reads the service desk's events
// from the database, so any server process will do). A list page reloads its list, a ticket's page its
// conversation and side panel, through HTMX (the partial routes), without reloading the page. The composer
// (outside the swapped parts) is cleared once their post is answered without an error, and each reply carries a one-time key so
// that a double submit stores one reply.
(function () {
  "use strict";
  function oneTimeKeys(root) {
    root.querySelectorAll("input.once-key").forEach(function (input) {
      if (!input.value) input.value = Date.now().toString(36) + Math.random().toString(36).slice(2, 10);
    });
  }
  function refresh(selector) {
    var el = document.querySelector(selector);
    if (!el || !window.htmx) return;
    // don't pull the controls away from someone changing them
    if (el.contains(document.activeElement) && /^(INPUT|SELECT|TEXTAREA)$/.test(document.activeElement.tagName)) return;
    htmx.trigger(el, "svcrefresh");
  }
  function start() {
    var root = document.getElementById("workspace");
    if (!root || !window.EventSource) return;
    oneTimeKeys(document);
    // a refused change (422, 409) answers the part with the refusal named: show it
    document.body.addEventListener("htmx:beforeSwap", function (event) {
      var status = event.detail.xhr.status;
      if ((status === 422 || status === 409) && root.contains(event.detail.elt)) {
        event.detail.shouldSwap = true;
        event.detail.isError = false;
      }
    });
    document.body.addEventListener("htmx:afterRequest", function (event) {
      var form = event.detail.elt;
      if (!form || !form.closest || !form.closest("#compose") || !event.detail.successful) return;
      form.reset();
      form.querySelectorAll("input.once-key").forEach(function (input) { input.value = ""; });
      oneTimeKeys(form);
    });
    var ticket = root.dataset.ticket;
    var pending = null;
    var source = new EventSource(root.dataset.live);
    source.addEventListener("ticket", function (event) {
      var data = JSON.parse(event.data);
      if (pending) return;
      pending = setTimeout(function () {
        pending = null;
        if (ticket) { refresh("#thread"); refresh("#side"); } else { refresh("#ticket-list"); }
      }, data.topic === "service.message_received" ? 0 : 250);
    });
    source.addEventListener("open", function () { root.classList.add("live"); });
    source.addEventListener("error", function () { root.classList.remove("live"); });
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start); else start();
})();
