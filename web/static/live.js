// Keeps the server-rendered status page current from /events (server-sent
// events). Without JS, or without EventSource, the page still works: it is
// rendered whole by the server and a reload shows the latest state.
(function () {
  "use strict";

  var root = document.getElementById("status");
  if (!root || !window.EventSource || !window.fetch) {
    return;
  }
  var eventsUrl = root.getAttribute("data-events-url");
  var statusUrl = root.getAttribute("data-status-url");
  var banner = document.getElementById("engine-banner");
  var note = document.getElementById("live-note");

  function byId(id) {
    return document.getElementById(id);
  }

  function setText(id, value) {
    var el = byId(id);
    if (el) {
      el.textContent = value === undefined || value === null ? "–" : String(value);
    }
  }

  function setState(id, value) {
    var el = byId(id);
    if (el) {
      el.textContent = value || "unknown";
      el.className = "state " + (value === "up" ? "up" : "down");
    }
  }

  function pad(n) {
    return n < 10 ? "0" + n : String(n);
  }

  function duration(seconds) {
    var s = Math.max(0, Math.floor(seconds));
    var h = Math.floor(s / 3600);
    var m = Math.floor((s % 3600) / 60);
    s = s % 60;
    return h ? h + ":" + pad(m) + ":" + pad(s) : m + ":" + pad(s);
  }

  function clock(ts) {
    var d = new Date(ts * 1000);
    return pad(d.getHours()) + ":" + pad(d.getMinutes()) + ":" + pad(d.getSeconds());
  }

  function cell(row, text) {
    var td = document.createElement("td");
    td.textContent = text || "";
    row.appendChild(td);
    return td;
  }

  function callRow(call) {
    var tr = document.createElement("tr");
    tr.setAttribute("data-call-id", call.id || "");
    var from = cell(tr, call.from_name ? call.from_name + " " : call.from);
    if (call.from_name) {
      var num = document.createElement("span");
      num.className = "number";
      num.textContent = call.from || "";
      from.appendChild(num);
    }
    cell(tr, call.to);
    cell(tr, call.trunk);
    cell(tr, call.queue);
    var state = document.createElement("span");
    state.className = "call-state " + (call.state || "");
    state.textContent = call.state || "";
    cell(tr, "").appendChild(state);
    var since = cell(tr, "");
    if (typeof call.since === "number") {
      var t = document.createElement("time");
      t.setAttribute("datetime", new Date(call.since * 1000).toISOString());
      t.textContent = clock(call.since);
      var elapsed = document.createElement("span");
      elapsed.className = "elapsed";
      elapsed.setAttribute("data-since", String(call.since));
      elapsed.textContent = duration(Date.now() / 1000 - call.since);
      since.appendChild(t);
      since.appendChild(document.createTextNode(" "));
      since.appendChild(elapsed);
    }
    return tr;
  }

  function render(status) {
    if (!status) {
      return;
    }
    var capacity = status.capacity || {};
    var calls = status.calls || [];
    var extensions = status.registered_extensions || [];
    if (status.engine === "up") {
      hideBanner();
    } else {
      showBanner("Engine is down" + (status.error ? ": " + status.error : ""));
    }
    setState("engine-state", status.engine);
    setState("edge-state", status.edge);
    byId("edge-state").title = status.edge_error || "";
    setText("active-calls", capacity.active_calls !== undefined ? capacity.active_calls : calls.length);
    setText("max-calls", capacity.max_calls);
    setText("engine-version", status.version || "");
    setText("engine-uptime", typeof status.uptime_s === "number" ? duration(status.uptime_s) : "");

    var body = byId("calls");
    body.replaceChildren.apply(body, calls.map(callRow));
    byId("no-calls").hidden = calls.length > 0;

    var list = byId("extensions");
    list.replaceChildren.apply(list, extensions.map(function (ext) {
      var li = document.createElement("li");
      li.textContent = String(ext);
      return li;
    }));
    byId("no-extensions").hidden = extensions.length > 0;
  }

  function showBanner(message) {
    banner.textContent = message;
    banner.hidden = false;
    setState("engine-state", "down");
  }

  function hideBanner() {
    banner.hidden = true;
    banner.textContent = "";
  }

  // Call events carry only what changed; rather than guess how each one
  // edits the table, fetch the whole status once per burst of events.
  var refreshTimer = null;
  function refreshSoon() {
    if (refreshTimer !== null) {
      return;
    }
    refreshTimer = window.setTimeout(function () {
      refreshTimer = null;
      fetch(statusUrl, { cache: "no-store" })
        .then(function (resp) {
          return resp.json().then(function (body) {
            if (resp.ok) {
              render(body);
            } else {
              showBanner("Engine not reachable: " + (body.message || resp.status));
            }
          });
        })
        .catch(function () {
          note.textContent = "Lost contact with the Keepline web server; retrying…";
          note.hidden = false;
        });
    }, 200);
  }

  var source = new EventSource(eventsUrl);
  source.onopen = function () {
    note.hidden = true;
  };
  source.onmessage = function (message) {
    var event;
    try {
      event = JSON.parse(message.data);
    } catch (e) {
      return;
    }
    switch (event.type) {
      case "hello":
      case "status":
        render(event.status);
        break;
      case "engine_down":
        showBanner("Engine not reachable: " + (event.message || "no answer"));
        break;
      default:
        refreshSoon();
    }
  };
  source.onerror = function () {
    // EventSource reconnects by itself; say so rather than show stale data silently.
    if (source.readyState !== EventSource.OPEN) {
      note.textContent = "Live updates paused; reconnecting…";
      note.hidden = false;
    }
  };

  window.setInterval(function () {
    var now = Date.now() / 1000;
    var spans = document.querySelectorAll(".elapsed[data-since]");
    for (var i = 0; i < spans.length; i++) {
      spans[i].textContent = duration(now - parseFloat(spans[i].getAttribute("data-since")));
    }
  }, 1000);
})();
