// Live run page: when the server says the run changed (SSE), fetch the server-rendered, escaped
// timeline fragment and swap it in. EventSource reconnects by itself after `retry:`; if the browser
// gives up (readyState CLOSED) we open a new one after a pause.
(function () {
  "use strict";
  var live = document.getElementById("live");
  if (!live) { return; }

  function refresh() {
    return fetch(live.dataset.timeline, { credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.text() : Promise.reject(r.status); })
      .then(function (html) { live.innerHTML = html; live.dataset.updated = String(Date.now()); })
      .catch(function () { /* the next change event will try again */ });
  }

  function connect() {
    var source = new EventSource(live.dataset.events);
    source.addEventListener("change", refresh);
    // "ready" comes once the server watches the run; marked connected only after the catch-up refresh.
    source.addEventListener("ready", function () {
      refresh().then(function () { live.dataset.connected = "yes"; });
    });
    source.onerror = function () {
      live.dataset.connected = "no";
      if (source.readyState === EventSource.CLOSED) { setTimeout(connect, 3000); }
    };
  }
  connect();
})();
