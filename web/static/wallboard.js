// Keeps the wallboard (web/templates/wallboard.html) live. The stream
// (/wallboard/events) sends the board's live figures on connect ("hello", "status")
// and every other engine event as a bare nudge (its type and time); on a nudge the page
// fetches /wallboard/live.json, once per burst. The day's figures come from
// /wallboard/today.json every data-refresh-s seconds. Waits tick every second here.
// Nothing is put in the page as HTML: every text goes in with textContent.
(function () {
  "use strict";

  var root = document.getElementById("wallboard");
  if (!root || !window.EventSource || !window.fetch || !window.KeeplineUtil) {
    return;
  }
  var util = window.KeeplineUtil;
  var el = util.el;
  var container = document.getElementById("wb-queues");
  var banner = document.getElementById("wb-banner");
  var empty = document.getElementById("wb-empty");
  var DASH = "\u2014";

  var board = null; // the last live figures
  var today = {}; // the day's figures by queue name

  // As web/wallboard.py's layout(): the grid for this many panels.
  function layout(panels) {
    var sizes = [1, 2, 4, 6];
    for (var i = 0; i < sizes.length; i++) {
      if (panels <= sizes[i]) {
        return sizes[i];
      }
    }
    return 9;
  }

  function tile(label, value, field, note, noteField) {
    var div = el("div", "wb-tile");
    div.appendChild(el("span", "wb-label", label));
    var span = el("span", "wb-value", value);
    span.setAttribute("data-field", field);
    div.appendChild(span);
    if (note !== undefined) {
      var small = el("span", "wb-note", note);
      small.setAttribute("data-field", noteField);
      div.appendChild(small);
    }
    return div;
  }

  function count(kind, value) {
    var span = el("span", "wb-count " + kind);
    var number = el("span", "wb-value", value);
    number.setAttribute("data-field", kind);
    span.appendChild(number);
    span.appendChild(el("span", "wb-note", kind));
    return span;
  }

  function percent(share) {
    return typeof share === "number" ? Math.round(share * 100) + " %" : DASH;
  }

  // The same panel as the template's macro, from the live and the day's figures.
  function panel(q, day) {
    var card = el("article", "wb-queue");
    card.setAttribute("data-queue", q.name || "");
    card.appendChild(el("h2", "wb-name", q.name || ""));
    var figures = el("div", "wb-figures");

    var waiting = tile("Callers waiting", q.waiting || 0, "waiting");
    if (q.waiting) {
      waiting.classList.add("wb-attention");
    }
    figures.appendChild(waiting);

    var longest = tile("Longest wait", DASH, "longest");
    var value = longest.querySelector(".wb-value");
    if (typeof q.longest_wait_s === "number") {
      value.setAttribute("data-since", String(Date.now() / 1000 - q.longest_wait_s));
      value.setAttribute("data-limit", String(q.sl_threshold_s || 0));
      value.textContent = util.duration(q.longest_wait_s);
    }
    figures.appendChild(longest);

    var agents = q.agents || {};
    var team = el("div", "wb-tile");
    team.appendChild(el("span", "wb-label", "Agents"));
    var counts = el("span", "wb-agents");
    counts.appendChild(count("free", agents.free || 0));
    counts.appendChild(count("busy", agents.busy || 0));
    counts.appendChild(count("paused", agents.paused || 0));
    team.appendChild(counts);
    figures.appendChild(team);

    day = day || {};
    figures.appendChild(tile("Service level today", percent(day.service_level), "sl",
      "answered within " + Math.round(q.sl_threshold_s || 0) + " s", "sl-note"));
    var answers = day.answers || 0;
    figures.appendChild(tile("Satisfaction today",
      typeof day.satisfaction === "number" ? day.satisfaction.toFixed(1) : DASH, "csat",
      answers + (answers === 1 ? " answer" : " answers"), "csat-note"));
    figures.appendChild(tile("Callbacks pending", q.callbacks || 0, "callbacks"));
    card.appendChild(figures);
    return card;
  }

  function render() {
    if (!board) {
      return;
    }
    var queues = board.queues || [];
    container.setAttribute("data-layout", String(layout(queues.length)));
    container.replaceChildren.apply(container, queues.map(function (q) {
      return panel(q, today[q.name]);
    }));
    empty.hidden = queues.length > 0;
    if (board.engine === "up") {
      hideBanner();
    } else {
      showBanner("The phone system is not running; these figures may be out of date.");
    }
    tick();
  }

  function showBanner(message) {
    banner.textContent = message;
    banner.hidden = false;
  }

  function hideBanner() {
    banner.hidden = true;
    banner.textContent = "";
  }

  function getJson(url) {
    return fetch(url, { cache: "no-store" }).then(function (resp) {
      if (!resp.ok) {
        throw new Error("HTTP " + resp.status);
      }
      return resp.json();
    });
  }

  var refreshTimer = null;
  function refreshSoon() {
    if (refreshTimer !== null) {
      return;
    }
    refreshTimer = window.setTimeout(function () {
      refreshTimer = null;
      getJson(root.getAttribute("data-live-url"))
        .then(function (body) {
          board = body;
          render();
        })
        .catch(function () {
          showBanner("Lost contact with the Keepline web server; retrying…");
        });
    }, 100);
  }

  function refreshToday() {
    getJson(root.getAttribute("data-today-url"))
      .then(function (body) {
        today = {};
        (body.queues || []).forEach(function (q) {
          today[q.name] = q;
        });
        render();
      })
      .catch(function () {
        // The live figures still work; the day's figures are tried again later.
      });
  }

  function tick() {
    var now = Date.now() / 1000;
    var waits = container.querySelectorAll(".wb-value[data-since]");
    for (var i = 0; i < waits.length; i++) {
      var waited = now - parseFloat(waits[i].getAttribute("data-since"));
      var limit = parseFloat(waits[i].getAttribute("data-limit"));
      waits[i].textContent = util.duration(waited);
      waits[i].parentNode.classList.toggle("wb-late", limit > 0 && waited >= limit);
    }
    document.getElementById("wb-clock").textContent = util.clock(now, false);
  }

  var source = new EventSource(root.getAttribute("data-events-url"));
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
        board = event.board;
        render();
        break;
      case "engine_down":
        showBanner("The phone system is not reachable; these figures may be out of date.");
        break;
      case "logged_out":
        window.location.reload(); // the login page, which brings the board back after
        break;
      default:
        refreshSoon();
    }
  };
  source.onerror = function () {
    if (source.readyState !== EventSource.OPEN) {
      showBanner("Live updates paused; reconnecting…");
    }
  };

  var refreshS = parseFloat(root.getAttribute("data-refresh-s")) || 30;
  refreshToday();
  window.setInterval(refreshToday, refreshS * 1000);
  window.setInterval(tick, 1000);
})();
