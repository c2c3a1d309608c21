// The voicemail inbox follows the engine's voicemail_changed events: a new, heard or
// deleted message in one of the boxes shown redraws the list (never under a message
// that is playing: then it waits for the pause). A message played to its end is marked
// heard, as on a phone.
(function () {
  "use strict";
  var root = document.getElementById("inbox");
  if (!root || !window.EventSource || !window.fetch || !window.DOMParser) {
    return;
  }
  var csrfMeta = document.querySelector('meta[name="csrf-token"]');
  var csrf = csrfMeta ? csrfMeta.getAttribute("content") : "";
  var boxes = (root.getAttribute("data-boxes") || "").split(" ").filter(Boolean);
  var pending = false;
  var loading = false;

  function note(text) {
    var line = document.getElementById("inbox-note");
    line.textContent = text;
    line.hidden = !text;
  }

  function playing() {
    return Array.prototype.some.call(root.querySelectorAll("audio"), function (a) {
      return !a.paused && !a.ended;
    });
  }

  function refresh() {
    if (playing() || loading) {
      pending = true;
      return;
    }
    pending = false;
    loading = true;
    fetch(window.location.pathname, { headers: { Accept: "text/html" }, credentials: "same-origin" })
      .then(function (r) {
        if (!r.ok) {
          throw new Error("the inbox answered " + r.status);
        }
        return r.text();
      })
      .then(function (html) {
        var fresh = new DOMParser().parseFromString(html, "text/html").getElementById("boxes");
        if (fresh) {
          document.getElementById("boxes").replaceWith(fresh);
          note("");
        }
      })
      .catch(function (e) {
        note("The list could not be updated (" + e.message + "); reload the page.");
      })
      .finally(function () {
        loading = false;
        if (pending) {
          refresh();
        }
      });
  }

  function markHeard(audio) {
    var row = audio.closest("tr.message");
    if (!row || !row.classList.contains("new")) {
      return;
    }
    fetch(row.getAttribute("data-heard-url"), {
      method: "POST", credentials: "same-origin",
      headers: { Accept: "application/json", "X-CSRF-Token": csrf },
    }).catch(function () { /* the button is still there */ });
  }

  // Media events do not bubble: listen in the capture phase, so redrawn rows work too.
  root.addEventListener("ended", function (e) {
    markHeard(e.target);
    if (pending) {
      refresh();
    }
  }, true);
  root.addEventListener("pause", function () {
    if (pending) {
      refresh();
    }
  }, true);
  root.addEventListener("submit", function (e) {
    var question = e.target.getAttribute("data-confirm");
    if (question && !window.confirm(question)) {
      e.preventDefault();
    }
  });

  var hellos = 0;
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
    } catch (err) {
      return;
    }
    if (event.type === "voicemail_changed" && boxes.indexOf(event.box) >= 0) {
      refresh();
    } else if (event.type === "hello" || event.type === "status") {
      // Back after the stream dropped: a change may have been missed meanwhile.
      if (hellos++ > 0) {
        refresh();
      }
    }
  };
})();
