// Keeps the server-rendered status page current from /events (server-sent
// events). Without JS, or without EventSource, the page still works: it is
// rendered whole by the server and a reload shows the latest state.
(function () {
  "use strict";

  var root = document.getElementById("status");
  if (!root || !window.EventSource || !window.fetch || !window.KeeplineUtil) {
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

  var util = window.KeeplineUtil;
  var el = util.el;
  var duration = util.duration;

  function clock(ts) {
    return util.clock(ts, true);
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
    if (superviseUrl) {
      var join = cell(tr, "");
      if (call.extension && call.state === "connected" && call.extension !== myExtension
          && csrfMeta) {
        ["listen", "whisper", "barge"].forEach(function (mode) {
          var form = el("form", "inline");
          form.method = "post";
          form.action = superviseUrl.replace("EXT", encodeURIComponent(call.extension));
          var token = el("input");
          token.type = "hidden";
          token.name = "csrf_token";
          token.value = csrfMeta.getAttribute("content");
          form.appendChild(token);
          var chosen = el("input");
          chosen.type = "hidden";
          chosen.name = "mode";
          chosen.value = mode;
          form.appendChild(chosen);
          var button = el("button", "secondary", mode);
          button.type = "submit";
          button.title = mode + " on " + call.extension + "'s call";
          form.appendChild(button);
          join.appendChild(form);
        });
      }
    }
    return tr;
  }

  function replaceRows(id, rows, emptyId) {
    var body = byId(id);
    if (!body) {
      return;
    }
    body.replaceChildren.apply(body, rows);
    if (emptyId && byId(emptyId)) {
      byId(emptyId).hidden = rows.length > 0;
    }
  }

  // The same shaping as web/live.py's _status_view, from the engine's status JSON.
  function queueCard(q, agents) {
    var members = (q.members || []).map(function (m) { return String(m.extension); });
    var free = members.filter(function (m) {
      return (agents[m] || {}).state === "available";
    }).length;
    var waiting = q.waiting || [];
    var card = el("article", "card queue");
    card.setAttribute("data-queue", q.name || "");
    var h = el("h3", null, q.name || "");
    h.appendChild(document.createTextNode(" "));
    h.appendChild(el("span", "hint", waiting.length + " waiting · " + free + " of " +
      members.length + " agents free"));
    card.appendChild(h);
    var list = el("ol", "waiting");
    var now = Date.now() / 1000;
    waiting.forEach(function (c) {
      var li = el("li");
      li.setAttribute("data-call-id", c.id || "");
      li.appendChild(el("span", "number", c.from || "unknown"));
      li.appendChild(document.createTextNode(" "));
      if (c.callback) {
        li.appendChild(el("span", "tag", "callback"));
        li.appendChild(document.createTextNode(" "));
      }
      var since = now - (c.wait_s || 0);
      var elapsed = el("span", "elapsed", duration(c.wait_s || 0));
      elapsed.setAttribute("data-since", String(since));
      li.appendChild(elapsed);
      if (c.ringing && c.ringing.length) {
        li.appendChild(document.createTextNode(" "));
        li.appendChild(el("span", "hint", "ringing " + c.ringing.join(", ")));
      }
      list.appendChild(li);
    });
    card.appendChild(list);
    if (!waiting.length) {
      card.appendChild(el("p", "empty", "Nobody waiting."));
    }
    return card;
  }

  var isAdmin = root.getAttribute("data-admin") === "yes";
  var myExtension = root.getAttribute("data-user-extension") || "";
  // Set only for supervisors and admins with a phone: the call rows' listen buttons.
  var superviseUrl = root.getAttribute("data-supervise-url") || "";
  var agentUrl = root.getAttribute("data-agent-url");
  var csrfMeta = document.querySelector('meta[name="csrf-token"]');

  function agentRow(ext, a) {
    var tr = el("tr");
    tr.setAttribute("data-agent", ext);
    cell(tr, ext);
    var state = cell(tr, "");
    state.appendChild(el("span", "agent-state " + (a.state || ""), (a.state || "").replace(/_/g, " ")));
    if (a.paused_reason) {
      state.appendChild(document.createTextNode(" "));
      state.appendChild(el("span", "hint", "(" + a.paused_reason + ")"));
    }
    cell(tr, (a.queues || []).join(", "));
    var actions = cell(tr, "");
    if ((isAdmin || ext === myExtension) && agentUrl && csrfMeta) {
      var action = a.state === "paused" ? "unpause" : "pause";
      var form = el("form", "inline");
      form.method = "post";
      form.action = agentUrl.replace("EXT", encodeURIComponent(ext)).replace("ACTION", action);
      var token = el("input");
      token.type = "hidden";
      token.name = "csrf_token";
      token.value = csrfMeta.getAttribute("content");
      form.appendChild(token);
      var button = el("button", "secondary", action);
      button.type = "submit";
      form.appendChild(button);
      actions.appendChild(form);
    }
    return tr;
  }

  // Do-not-disturb: each phone on it, with a "turn off" button for an admin or its owner.
  var dndList = byId("dnd");
  var dndUrl = dndList ? dndList.getAttribute("data-dnd-url") : "";
  function dndItem(ext) {
    var li = el("li", "", ext);
    li.setAttribute("data-dnd", ext);
    if ((isAdmin || ext === myExtension) && dndUrl && csrfMeta) {
      var form = el("form", "inline");
      form.method = "post";
      form.action = dndUrl;
      [["csrf_token", csrfMeta.getAttribute("content")], ["extension", ext], ["on", "no"]]
        .forEach(function (pair) {
          var input = el("input");
          input.type = "hidden";
          input.name = pair[0];
          input.value = pair[1];
          form.appendChild(input);
        });
      var button = el("button", "secondary", "turn off");
      button.type = "submit";
      form.appendChild(document.createTextNode(" "));
      form.appendChild(button);
      li.appendChild(form);
    }
    return li;
  }

  function trunkRow(t, monitors) {
    var monitor = monitors["trunk:" + t.name] || {};
    var state = monitor.state || (t.probed ? "unknown" : "not watched");
    var tr = el("tr");
    tr.setAttribute("data-trunk", t.name || "");
    var name = cell(tr, (t.name || "") + " ");
    name.appendChild(el("span", "hint", t.host || ""));
    cell(tr, t.kind);
    var span = el("span", "line-state " + state, state);
    span.title = monitor.detail || "";
    cell(tr, "").appendChild(span);
    return tr;
  }

  function callbackRow(cb) {
    var tr = el("tr");
    tr.setAttribute("data-callback", String(cb.id));
    cell(tr, cb.number);
    cell(tr, cb.queue);
    cell(tr, (cb.state || "").replace(/_/g, " "));
    cell(tr, typeof cb.requested_at === "number" ? clock(cb.requested_at) : "");
    return tr;
  }

  function megabytes(mb) {
    return mb >= 1024 ? (mb / 1024).toFixed(1) + " GB" : Math.round(mb) + " MB";
  }

  function renderSystem(sys) {
    if (!sys) {
      return;
    }
    setText("sys-cpu", Math.round(sys.cpu_percent) + " %");
    setText("sys-temp", typeof sys.temperature_c === "number" ? Math.round(sys.temperature_c) + " °C" : "no sensor");
    setText("sys-memory", Math.round(sys.memory_percent) + " %");
    setText("sys-disk", megabytes(sys.disk_free_mb));
    setText("sys-uptime", util.uptime(sys.uptime_s || 0));
    var attention = sys.attention || [];
    var list = byId("sys-attention-list");
    if (list) {
      list.replaceChildren.apply(list, attention.map(function (line) { return el("li", "", line); }));
      byId("sys-attention").hidden = attention.length === 0;
    }
  }

  // "Engine restarted 2 times, last at 14:05 (killed by SIGKILL)", from the launcher's count.
  function renderRestarts(restarts) {
    var line = byId("engine-restarts");
    if (!line) {
      return;
    }
    var count = restarts && typeof restarts.count === "number" ? restarts.count : 0;
    if (count <= 0) {
      line.hidden = true;
      line.textContent = "";
      return;
    }
    var text = "Engine restarted " + count + (count === 1 ? " time" : " times");
    if (typeof restarts.last_at === "number") {
      text += ", last at " + util.clock(restarts.last_at, false);
    }
    if (restarts.last_exit) {
      text += " (" + restarts.last_exit + ")";
    }
    line.textContent = text;
    line.hidden = false;
  }

  function render(status) {
    if (!status) {
      return;
    }
    renderRestarts(status.restarts);
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
    // Legs, as the engine counts them (not calls.length, which counts conversations).
    setText("active-calls", capacity.active_calls !== undefined ? capacity.active_calls : "–");
    setText("max-calls", capacity.max_calls);
    var warning = byId("capacity-warning");
    if (warning) {
      warning.hidden = !capacity.warning;
      warning.textContent = capacity.warning ? "Capacity: " + capacity.warning : "";
    }
    setText("engine-version", status.version || "");
    setText("engine-uptime", typeof status.uptime_s === "number" ? util.uptime(status.uptime_s) : "");

    var failover = status.failover || {};
    var mode = byId("failover-mode");
    if (mode) {
      mode.textContent = failover.mode || "unknown";
      mode.className = "mode " + (failover.mode || "");
    }
    var detail = [];
    if (failover.manual_disaster) {
      detail.push("switched on by hand");
    }
    if (failover.override) {
      detail.push(failover.override + " forced");
    }
    setText("failover-detail", detail.join(", "));

    var agents = status.agents || {};
    replaceRows("queues", (status.queues || []).map(function (q) { return queueCard(q, agents); }), "no-queues");
    replaceRows("agents", Object.keys(agents).sort().map(function (ext) { return agentRow(ext, agents[ext]); }), "no-agents");
    replaceRows("dnd", (status.dnd || []).map(function (ext) { return dndItem(String(ext)); }), "no-dnd");
    var monitors = failover.monitors || {};
    replaceRows("trunks", (status.trunks || []).map(function (t) { return trunkRow(t, monitors); }));
    replaceRows("callbacks", (status.callbacks || []).map(callbackRow), "no-callbacks");
    renderSystem(status.system);

    replaceRows("calls", calls.map(callRow), "no-calls");

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
    }, 100);
  }

  var source = new EventSource(eventsUrl);
  // Leaving the page closes its stream at once: Chromium keeps the connection of a page
  // it left (back/forward cache) open, and the server counts it against the login's
  // live views until then. A page brought back from that cache reloads.
  window.addEventListener("pagehide", function () {
    source.close();
  });
  window.addEventListener("pageshow", function (event) {
    if (event.persisted) {
      window.location.reload();
    }
  });
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
      case "system_sampled":
        renderSystem(event.system);
        break;
      case "pop_shown":
      case "pop_changed":
      case "pop_named":
        break; // for the agent's page; the dashboard shows the call from call events
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
