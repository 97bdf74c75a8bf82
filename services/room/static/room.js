// listenwell incident room: live updates without reloading the page.
// The server sends the read model's version over server-sent events; when it changes, this
// fetches the same page again and swaps its <main> in. The new markup is the server's own
// escaped HTML, parsed with DOMParser (which runs no script) and adopted node by node.
(function () {
  "use strict";
  var main = document.getElementById("live");
  if (!main || !window.EventSource || location.pathname.indexOf("/room/login") === 0) return;
  var state = document.getElementById("live-state");
  var shown = main.getAttribute("data-version");
  var busy = false, again = false;

  function openDetails() {
    var keys = {};
    document.querySelectorAll("details[open][data-key]").forEach(function (d) {
      keys[d.getAttribute("data-key")] = true;
    });
    return keys;
  }

  function refresh() {
    if (busy) { again = true; return; }
    busy = true;
    fetch(location.href, { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then(function (r) {
        if (r.redirected || r.status === 401) { location.reload(); throw new Error("signed out"); }
        return r.text();
      })
      .then(function (html) {
        var doc = new DOMParser().parseFromString(html, "text/html");
        var fresh = doc.getElementById("live");
        if (!fresh) return;
        var keep = openDetails();
        var current = document.getElementById("live");
        current.replaceWith(document.adoptNode(fresh));
        document.querySelectorAll("details[data-key]").forEach(function (d) {
          if (keep[d.getAttribute("data-key")]) d.open = true;
        });
        shown = fresh.getAttribute("data-version");
        state = document.getElementById("live-state");
        document.title = doc.title;
      })
      .catch(function () {})
      .then(function () {
        busy = false;
        if (again) { again = false; refresh(); }
      });
  }

  var source = new EventSource("/room/events");
  source.addEventListener("version", function (event) {
    if (state) { state.textContent = "live"; state.className = ""; }
    if (event.data !== shown) refresh();
  });
  source.onerror = function () {
    if (state) { state.textContent = "reconnecting…"; state.className = "stale"; }
  };
})();
