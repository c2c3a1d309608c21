// The agent's screen-pop: a card for each call that rings this page's phone.
//
// The card is drawn at once from the engine's pop_shown event (number, SIP
// name, queue, wait); the contact, earlier calls and callbacks are fetched
// after it is on screen, then, if nobody has named the caller, the office's
// external directory. pop_changed events move the card along: answered,
// transferred, ended or missed. No framework; CSP allows no inline script.
(function () {
  "use strict";

  var root = document.getElementById("screenpop");
  if (!root || !window.EventSource || !window.fetch || !window.KeeplineUtil) {
    return;
  }
  var extension = root.getAttribute("data-extension") || "";
  var eventsUrl = root.getAttribute("data-events-url");
  var callerUrl = root.getAttribute("data-caller-url") || "";
  var lookupUrl = root.getAttribute("data-lookup-url") || "";
  var contactUrl = root.getAttribute("data-contact-url") || "";
  var crmTemplate = root.getAttribute("data-crm-url") || "";
  var crmOpen = root.getAttribute("data-crm-open") === "yes";
  var wrapupUrl = root.getAttribute("data-wrapup-url") || "";
  var wrapupCodes = {};  // queue -> [{code, label}]: the card asks for one after a queue call
  try {
    wrapupCodes = JSON.parse(root.getAttribute("data-wrapup-codes") || "{}") || {};
  } catch (e) {
    wrapupCodes = {};
  }
  var csrfMeta = document.querySelector('meta[name="csrf-token"]');
  var csrf = csrfMeta ? csrfMeta.getAttribute("content") : "";
  var cardsBox = document.getElementById("pop-cards");
  var waiting = document.getElementById("pop-waiting");
  var note = document.getElementById("pop-note");
  var recentList = document.getElementById("recent-pops");
  var noRecent = document.getElementById("no-recent");

  var MAX_CARDS = 3;
  var MAX_RECENT = 5;
  var FINAL = { ended: true, missed: true, transferred: true };
  var KIND_LABELS = {
    queue: "Queue call",
    callback: "Callback",
    direct: "Direct call",
    transfer: "Transferred to you"
  };
  var STATE_LABELS = {
    ringing: "ringing",
    answered: "answered",
    transferred: "transferred",
    ended: "ended",
    missed: "missed"
  };

  var recent = [];         // [{pop, number, name, queue, kind, at, state}], newest first
  var crmOpened = {};      // pop -> true once its CRM page was opened
  var notifications = {};  // pop -> Notification, closed when the ring is over

  // ---- small helpers ----------------------------------------------------------------

  var util = window.KeeplineUtil;
  var el = util.el;
  var pad = util.pad;
  var duration = util.duration;
  var clock = util.clock;  // "HH:MM"

  function dateTime(ts) {
    var d = new Date(ts * 1000);
    return d.getFullYear() + "-" + pad(d.getMonth() + 1) + "-" + pad(d.getDate()) + " " +
      pad(d.getHours()) + ":" + pad(d.getMinutes());
  }

  // As appliance/core/callerid.py: a SIP "name" that is the number or a placeholder names nobody.
  function usable(name) {
    var text = (name || "").trim();
    if (!text || /^\+?[0-9]+$/.test(text) || /^(anonymous|unknown|unavailable)$/i.test(text)) {
      return "";
    }
    return text;
  }

  function fill(template, number) {
    return template.split("NUMBER").join(encodeURIComponent(number));
  }

  function crmLink(number) {
    return crmTemplate ? crmTemplate.split("{number}").join(encodeURIComponent(number)) : "";
  }

  // A card action through the web (wrap-up code, recording, do-not-disturb): the answer's
  // JSON, or an Error carrying the refusal's message.
  function postJson(url, payload) {
    return fetch(url, {
      method: "POST", credentials: "same-origin",
      headers: {"Content-Type": "application/json", "X-CSRF-Token": csrf,
                "Accept": "application/json"},
      body: JSON.stringify(payload)
    }).then(function (resp) {
      return resp.json().then(function (body) {
        if (!resp.ok) {
          throw new Error(body.message || ("HTTP " + resp.status));
        }
        return body;
      });
    });
  }

  function getJson(url) {
    return fetch(url, {
      cache: "no-store",
      credentials: "same-origin",
      headers: { Accept: "application/json" }
    }).then(function (resp) {
      return resp.json().then(function (body) {
        if (!resp.ok) {
          throw new Error(body.message || body.error || String(resp.status));
        }
        return body;
      });
    });
  }

  function fact(list, label, value, className) {
    var div = el("div", className);
    div.appendChild(el("dt", null, label));
    div.appendChild(el("dd", null, value));
    list.appendChild(div);
    return div;
  }

  function part(card, name) {
    return card.querySelector("[data-part=" + name + "]");
  }

  function cardFor(pop) {
    var cards = cardsBox.querySelectorAll("[data-pop]");
    for (var i = 0; i < cards.length; i++) {
      if (cards[i].getAttribute("data-pop") === pop) {
        return cards[i];
      }
    }
    return null;
  }

  // ---- the card, drawn from the event alone --------------------------------------------

  function buildCard(ev) {
    var number = ev.caller_number || "";
    var sipName = usable(ev.caller_name);
    var modemName = usable(ev.modem_name);
    var card = el("article", "card pop");
    card.setAttribute("data-pop", ev.pop || "");
    card.setAttribute("data-number", number);
    card.setAttribute("data-state", "ringing");
    card.setAttribute("data-kind", ev.kind || "");
    card.setAttribute("data-queue", ev.queue || "");
    card.setAttribute("data-call", ev.call || "");
    card.setAttribute("data-modem-name", modemName);
    card.setAttribute("data-name-source", sipName ? "sip" : modemName ? "modem" : "");

    var head = el("header", "pop-head");
    var title = el("h2", "pop-name");
    title.setAttribute("data-part", "name");
    title.textContent = sipName || modemName || number || "Unknown caller";
    head.appendChild(title);
    var badge = el("span", "pop-state ringing", STATE_LABELS.ringing);
    badge.setAttribute("data-part", "state");
    head.appendChild(badge);
    var detail = el("span", "hint pop-detail");
    detail.setAttribute("data-part", "detail");
    head.appendChild(detail);
    card.appendChild(head);

    var sub = el("p", "pop-number");
    // Without a name the heading is the number: not said twice (shown again once named).
    var numberText = el("span", "number", number || "no number");
    numberText.setAttribute("data-part", "number");
    numberText.hidden = Boolean(number) && !sipName && !modemName;
    sub.appendChild(numberText);
    var source = el("span", "hint pop-source",
      sipName ? " (" + SOURCE_LABELS.sip + ")" : modemName ? " (" + SOURCE_LABELS.modem + ")" : "");
    source.setAttribute("data-part", "source");
    sub.appendChild(source);
    var external = el("span", "pop-external");
    external.setAttribute("data-part", "external");
    external.hidden = true;
    sub.appendChild(external);
    card.appendChild(sub);

    var facts = el("dl", "pop-facts");
    fact(facts, "Call", KIND_LABELS[ev.kind] || ev.kind || "Call");
    if (ev.queue) {
      fact(facts, "Queue", ev.queue + (ev.dialled && ev.dialled !== ev.queue ? " (" + ev.dialled + ")" : ""));
    } else if (ev.dialled) {
      fact(facts, "Dialled", ev.dialled);
    }
    if (typeof ev.wait_s === "number") {
      fact(facts, "Waited", duration(ev.wait_s));
    }
    if (typeof ev.position === "number") {
      fact(facts, "Position on entry", ev.position);
    }
    if (ev.callback) {
      fact(facts, "Callback request", "#" + ev.callback);
    }
    if (ev.language_name) {
      fact(facts, "Language", "speaks " + ev.language_name);
    }
    card.appendChild(facts);

    var crm = el("p", "pop-crm");
    crm.setAttribute("data-part", "crm");
    var link = crmLink(number);
    if (link) {
      crm.appendChild(crmAnchor(link));
    } else {
      crm.hidden = true;
    }
    card.appendChild(crm);

    var contact = el("section", "pop-contact");
    contact.setAttribute("data-part", "contact");
    contact.appendChild(el("p", "hint", "Looking up " + (number || "the caller") + "…"));
    card.appendChild(contact);

    var history = el("section", "pop-history");
    history.setAttribute("data-part", "history");
    card.appendChild(history);

    var callbacks = el("section", "pop-callbacks");
    callbacks.setAttribute("data-part", "callbacks");
    card.appendChild(callbacks);

    if (number) {
      card.appendChild(contactForm(card, number));
    }
    return card;
  }

  function crmAnchor(url) {
    var a = el("a", "button secondary", "Open in CRM");
    a.href = url;
    a.target = "_blank";
    a.rel = "noopener noreferrer";
    return a;
  }

  function showCard(ev) {
    var old = cardFor(ev.pop || "");
    if (old) {
      return old;  // the same ring announced twice (a reconnect): keep the card
    }
    var cards = cardsBox.querySelectorAll("[data-pop]");
    // A new ring replaces the cards of calls that are over; a call still on keeps its card.
    for (var i = 0; i < cards.length; i++) {
      if (FINAL[cards[i].getAttribute("data-state")]) {
        cards[i].remove();
      }
    }
    cards = cardsBox.querySelectorAll("[data-pop]");
    for (var j = MAX_CARDS - 1; j < cards.length; j++) {
      cards[j].remove();
    }
    var card = buildCard(ev);
    cardsBox.insertBefore(card, cardsBox.querySelector("[data-pop]"));
    waiting.hidden = true;
    card.setAttribute("data-rendered-at", String(Date.now()));
    return card;
  }

  // ---- filling in what the office knows ------------------------------------------------

  // Where a name came from, best first (as appliance/core/callerid.py SOURCES).
  var SOURCE_LABELS = {
    contact: "contact", sip: "caller ID", modem: "line caller ID", external: "external lookup"
  };
  var SOURCE_RANK = { contact: 0, sip: 1, modem: 2, external: 3, "": 4 };

  function setName(card, name, source) {
    part(card, "name").textContent = name;
    part(card, "number").hidden = false;
    part(card, "source").textContent = source ? " (" + SOURCE_LABELS[source] + ")" : "";
    card.setAttribute("data-name-source", source);
  }

  // The caller-ID modem heard the name after the phone began to ring (pop_named event).
  function onPopName(ev) {
    var card = cardFor(ev.pop || "");
    var name = usable(ev.modem_name);
    if (!card || !name) {
      return;
    }
    card.setAttribute("data-modem-name", name);
    if (SOURCE_RANK[card.getAttribute("data-name-source") || ""] > SOURCE_RANK.modem) {
      setName(card, name, "modem");
      rememberName(ev.pop, name);
    }
  }

  function renderContact(card, contact) {
    var box = part(card, "contact");
    box.replaceChildren();
    if (!contact) {
      box.appendChild(el("p", "hint", "Not in the contacts yet."));
      return;
    }
    var facts = el("dl", "pop-facts");
    if (contact.company) {
      fact(facts, "Company", contact.company, "company");
    }
    if (contact.updated_at) {
      fact(facts, "Updated", dateTime(contact.updated_at) + (contact.updated_by ? " by " + contact.updated_by : ""));
    }
    box.appendChild(facts);
    if (contact.notes) {
      box.appendChild(el("p", "pop-notes", contact.notes));
    }
  }

  function renderHistory(card, calls, total) {
    var box = part(card, "history");
    box.replaceChildren();
    var title = el("h3", null, "Earlier calls");
    if (total > calls.length) {
      title.appendChild(el("span", "hint", " (last " + calls.length + " of " + total + ")"));
    }
    box.appendChild(title);
    if (!calls.length) {
      box.appendChild(el("p", "empty", "First call from this number."));
      return;
    }
    var table = el("table", "list pop-calls");
    var head = el("tr");
    ["When", "Queue", "Agent", "Outcome", "Duration"].forEach(function (h) {
      head.appendChild(el("th", null, h));
    });
    var thead = el("thead");
    thead.appendChild(head);
    table.appendChild(thead);
    var body = el("tbody");
    calls.forEach(function (c) {
      var tr = el("tr");
      tr.appendChild(el("td", null, typeof c.started_at === "number" ? dateTime(c.started_at) : ""));
      tr.appendChild(el("td", null, c.queue || c.dialled || ""));
      tr.appendChild(el("td", null, c.agent || ""));
      var outcome = el("td", "outcome " + (c.outcome || ""), (c.outcome || "").replace(/_/g, " "));
      if (c.wrapup) {
        outcome.appendChild(el("span", "pop-wrapup" + (c.wrapup.conversion ? " conversion" : ""),
          " · " + c.wrapup.code + (c.wrapup.note ? " (" + c.wrapup.note + ")" : "")));
      }
      if (c.voicemail) {
        outcome.appendChild(document.createTextNode(", left a voicemail (" + duration(c.voicemail.duration_s) + ") "));
        var play = el("a", "pop-voicemail", "play");
        play.href = c.voicemail.url;
        play.target = "_blank";
        play.rel = "noopener";
        outcome.appendChild(play);
      }
      // Only an admin's or a supervisor's card carries recordings; each play is audited.
      (c.recordings || []).forEach(function (r) {
        var player = el("audio", "pop-recording");
        player.controls = true;
        player.preload = "none";
        player.src = r.url;
        player.title = "Recording (" + duration(r.duration_s) + ")";
        outcome.appendChild(player);
      });
      tr.appendChild(outcome);
      tr.appendChild(el("td", null, typeof c.duration_s === "number" ? duration(c.duration_s) : ""));
      body.appendChild(tr);
    });
    table.appendChild(body);
    box.appendChild(table);
  }

  function renderCallbacks(card, callbacks) {
    var box = part(card, "callbacks");
    box.replaceChildren();
    if (!callbacks.length) {
      return;
    }
    box.appendChild(el("h3", null, "Callback requests"));
    var list = el("ul", "pop-callback-list");
    callbacks.forEach(function (cb) {
      var li = el("li");
      li.setAttribute("data-callback", String(cb.id));
      li.appendChild(el("span", "tag", (cb.state || "").replace(/_/g, " ")));
      li.appendChild(document.createTextNode(" " + (cb.queue || "") +
        (typeof cb.requested_at === "number" ? ", asked " + dateTime(cb.requested_at) : "") +
        (cb.attempts ? ", " + cb.attempts + (cb.attempts === 1 ? " attempt" : " attempts") : "") +
        (cb.reason ? " (" + cb.reason + ")" : "")));
      list.appendChild(li);
    });
    box.appendChild(list);
  }

  function fillForm(card, contact) {
    var form = card.querySelector("form.pop-contact-form");
    if (!form || form.getAttribute("data-touched") === "yes") {
      return;  // never overwrite what the agent is typing
    }
    ["name", "company", "notes"].forEach(function (key) {
      form.elements[key].value = contact ? contact[key] || "" : "";
    });
  }

  function enrich(card, ev) {
    var number = ev.caller_number || "";
    if (!number || !callerUrl) {
      return;
    }
    getJson(fill(callerUrl, number) + "?sip_name=" + encodeURIComponent(ev.caller_name || "") +
      "&modem_name=" + encodeURIComponent(card.getAttribute("data-modem-name") || "") +
      "&call=" + encodeURIComponent(ev.call || ""))
      .then(function (info) {
        if (info.name) {
          setName(card, info.name, info.name_source);
          rememberName(card.getAttribute("data-pop"), info.name);
        }
        if (info.contact && info.contact.name) {
          card.setAttribute("data-contact-name", info.contact.name);
        }
        renderContact(card, info.contact);
        renderHistory(card, info.calls || [], info.total_calls || 0);
        renderCallbacks(card, info.callbacks || []);
        fillForm(card, info.contact);
        if (info.crm_url && !crmTemplate) {
          var crm = part(card, "crm");
          crm.replaceChildren(crmAnchor(info.crm_url));
          crm.hidden = false;
        }
        if (!(info.contact && info.contact.name) && lookupUrl) {
          lookupName(card, number, !info.name);
        }
      })
      .catch(function (err) {
        part(card, "contact").replaceChildren(
          el("p", "field-error", "Could not load this caller's record: " + err.message));
      });
  }

  function lookupName(card, number, headline) {
    getJson(fill(lookupUrl, number)).then(function (found) {
      if (!found.name) {
        return;
      }
      var text = found.name + (found.company ? ", " + found.company : "");
      if (headline && SOURCE_RANK[card.getAttribute("data-name-source") || ""] > SOURCE_RANK.external) {
        setName(card, text, "external");
        rememberName(card.getAttribute("data-pop"), found.name);
      } else {
        var ext = part(card, "external");
        ext.textContent = " · directory: " + text + " (external lookup)";
        ext.hidden = false;
      }
      card.setAttribute("data-external-name", found.name);
      var form = card.querySelector("form.pop-contact-form");
      if (form && form.getAttribute("data-touched") !== "yes" && !form.elements.name.value) {
        form.elements.name.placeholder = found.name;
      }
    }).catch(function () {
      // The directory is a nicety: a card without its name is still a card.
    });
  }

  // ---- the contact form: fetch with the CSRF header, or a plain post without JS -----------

  function contactForm(card, number) {
    var form = el("form", "form pop-contact-form");
    form.method = "post";
    form.action = fill(contactUrl, number);
    var token = el("input");
    token.type = "hidden";
    token.name = "csrf_token";
    token.value = csrf;
    form.appendChild(token);
    var ext = el("input");
    ext.type = "hidden";
    ext.name = "extension";
    ext.value = extension;
    form.appendChild(ext);
    var legend = el("h3", null, "Contact");
    form.appendChild(legend);
    // The limits of appliance/store/history.py's CONTACT_LIMITS (the engine checks again).
    [["name", "Name", "input", 80], ["company", "Company", "input", 80],
      ["notes", "Notes", "textarea", 4000]].forEach(function (f) {
      var label = el("label", null, f[1]);
      label.setAttribute("data-field", f[0]);
      var input = el(f[2]);
      if (f[2] === "input") {
        input.type = "text";
      } else {
        input.rows = 3;
      }
      input.name = f[0];
      input.maxLength = f[3];
      input.autocomplete = "off";
      label.appendChild(input);
      var error = el("span", "field-error");
      error.setAttribute("data-error-for", f[0]);
      error.hidden = true;
      label.appendChild(error);
      form.appendChild(label);
    });
    var row = el("div", "pop-form-actions");
    var save = el("button", null, "Save contact");
    save.type = "submit";
    row.appendChild(save);
    var status = el("span", "hint");
    status.setAttribute("data-part", "form-status");
    row.appendChild(status);
    form.appendChild(row);
    form.addEventListener("input", function () {
      form.setAttribute("data-touched", "yes");
    });
    form.addEventListener("submit", function (e) {
      e.preventDefault();
      submitContact(card, form, status, save);
    });
    return form;
  }

  // Shows each problem next to its field; answers the problems that have no field here.
  function showFieldErrors(form, fields) {
    var spans = form.querySelectorAll("[data-error-for]");
    var shown = {};
    for (var i = 0; i < spans.length; i++) {
      var key = spans[i].getAttribute("data-error-for");
      var message = fields[key] || "";
      shown[key] = true;
      spans[i].textContent = message;
      spans[i].hidden = !message;
      spans[i].parentNode.classList.toggle("invalid", !!message);
    }
    return Object.keys(fields).filter(function (k) { return !shown[k]; })
      .map(function (k) { return k + ": " + fields[k]; });
  }

  function submitContact(card, form, status, button) {
    button.disabled = true;
    status.textContent = "Saving…";
    fetch(form.action, {
      method: "POST",
      credentials: "same-origin",
      headers: { Accept: "application/json", "X-CSRF-Token": csrf },
      body: new URLSearchParams(new FormData(form))
    }).then(function (resp) {
      return resp.json().then(function (body) {
        if (resp.ok) {
          showFieldErrors(form, {});
          var contact = body.contact || {};
          status.textContent = "Saved.";
          form.removeAttribute("data-touched");
          renderContact(card, contact);
          if (contact.name) {
            card.setAttribute("data-contact-name", contact.name);
            setName(card, contact.name, "contact");
          }
        } else if (body.fields) {
          var others = showFieldErrors(form, body.fields);
          status.textContent = "Not saved: " + (others.length ? others.join("; ")
            : "see the fields marked.");
        } else {
          status.textContent = "Not saved: " + (body.error || body.message || resp.status);
        }
      });
    }).catch(function () {
      status.textContent = "Not saved: the Keepline web server did not answer.";
    }).then(function () {
      button.disabled = false;
    });
  }

  // ---- following the call --------------------------------------------------------------

  // ---- wrap-up: the code a queue call came to ------------------------------------------

  function wrapupForm(card) {
    var codes = wrapupCodes[card.getAttribute("data-queue") || ""] || [];
    if (!codes.length || !wrapupUrl || card.querySelector(".pop-wrapup-form")) {
      return;
    }
    var form = el("form", "pop-wrapup-form form");
    form.appendChild(el("h3", null, "Wrap-up"));
    var pick = el("label", null, "What did the call come to? ");
    var select = el("select");
    select.name = "code";
    codes.forEach(function (c, i) {
      var option = el("option", null, (i + 1) + ". " + c.label);
      option.value = c.code;
      select.appendChild(option);
    });
    pick.appendChild(select);
    form.appendChild(pick);
    var noteLabel = el("label", null, "Note ");
    var noteInput = el("input");
    noteInput.name = "note";
    noteInput.maxLength = 500;
    noteLabel.appendChild(noteInput);
    form.appendChild(noteLabel);
    var button = el("button", null, "Save and take the next call");
    button.type = "submit";
    form.appendChild(button);
    var status = el("p", "hint pop-wrapup-status");
    form.appendChild(status);
    form.addEventListener("submit", function (e) {
      e.preventDefault();
      button.disabled = true;
      status.textContent = "Saving…";
      postJson(wrapupUrl, {extension: extension, code: select.value, note: noteInput.value})
      .then(function (body) {
        wrappedUp(card, body.code, body.note);
      }).catch(function (err) {
        status.textContent = "Not saved: " + err.message;
        button.disabled = false;
      });
    });
    card.appendChild(form);
  }

  function wrappedUp(card, code, noteText) {
    var form = card.querySelector(".pop-wrapup-form");
    if (form) {
      form.remove();
    }
    var codes = wrapupCodes[card.getAttribute("data-queue") || ""] || [];
    var label = code;
    codes.forEach(function (c) { if (c.code === code) { label = c.label; } });
    card.setAttribute("data-wrapup", code);
    var shown = card.querySelector(".pop-wrapped");
    if (!shown) {
      shown = el("p", "pop-wrapped");
      card.appendChild(shown);
    }
    shown.textContent = "Wrapped up: " + label + (noteText ? " (" + noteText + ")" : "");
  }

  function onWrapup(ev) {
    var cards = cardsBox.querySelectorAll("[data-call]");
    for (var i = 0; i < cards.length; i++) {
      if (cards[i].getAttribute("data-call") === ev.call) {
        wrappedUp(cards[i], ev.code, ev.note);
      }
    }
  }

  function setState(pop, state, detail) {
    var card = cardFor(pop);
    if (card && state === "ended" && card.getAttribute("data-state") === "answered" &&
        card.getAttribute("data-kind") === "queue" && !card.getAttribute("data-wrapup")) {
      wrapupForm(card);
    }
    if (card) {
      card.setAttribute("data-state", state);
      var badge = part(card, "state");
      badge.textContent = STATE_LABELS[state] || state;
      badge.className = "pop-state " + state;
      part(card, "detail").textContent = detail ? " " + detail : "";
    }
    if (notifications[pop]) {  // answered or over: the ring's notification is old news
      notifications[pop].close();
      delete notifications[pop];
    }
    for (var i = 0; i < recent.length; i++) {
      if (recent[i].pop === pop) {
        recent[i].state = state;
        recent[i].detail = detail || "";
      }
    }
    renderRecent();
  }

  function remember(ev) {
    for (var i = 0; i < recent.length; i++) {
      if (recent[i].pop === ev.pop) {
        return;
      }
    }
    recent.unshift({
      pop: ev.pop, number: ev.caller_number || "", name: usable(ev.caller_name) || usable(ev.modem_name),
      queue: ev.queue || ev.dialled || "", kind: ev.kind || "",
      at: typeof ev.at === "number" ? ev.at : Date.now() / 1000, state: "ringing", detail: ""
    });
    recent.length = Math.min(recent.length, MAX_RECENT);
    renderRecent();
  }

  function rememberName(pop, name) {
    for (var i = 0; i < recent.length; i++) {
      if (recent[i].pop === pop) {
        recent[i].name = name;
      }
    }
    renderRecent();
  }

  function renderRecent() {
    recentList.replaceChildren.apply(recentList, recent.map(function (r) {
      var li = el("li");
      li.setAttribute("data-recent-pop", r.pop);
      li.appendChild(el("time", "hint", clock(r.at)));
      li.appendChild(document.createTextNode(" "));
      li.appendChild(el("span", "number", r.number || "no number"));
      if (r.name) {
        li.appendChild(document.createTextNode(" " + r.name));
      }
      if (r.queue) {
        li.appendChild(document.createTextNode(" · " + r.queue));
      }
      li.appendChild(document.createTextNode(" "));
      li.appendChild(el("span", "pop-state " + r.state, (STATE_LABELS[r.state] || r.state) +
        (r.detail ? " " + r.detail : "")));
      return li;
    }));
    noRecent.hidden = recent.length > 0;
  }

  // ---- browser notifications -----------------------------------------------------------

  var allow = document.getElementById("allow-notifications");
  var notifyState = document.getElementById("notifications-state");

  function showNotificationState() {
    if (!("Notification" in window)) {
      notifyState.textContent = "This browser cannot show notifications.";
      notifyState.hidden = false;
      return;
    }
    allow.hidden = Notification.permission !== "default";
    notifyState.hidden = Notification.permission === "default";
    notifyState.textContent = Notification.permission === "granted"
      ? "Notifications are on while this tab is in the background."
      : "Notifications are blocked for this site; allow them in the browser's site settings.";
  }

  allow.addEventListener("click", function () {
    var asked = Notification.requestPermission(showNotificationState);
    if (asked && asked.then) {
      asked.then(showNotificationState);
    }
  });
  showNotificationState();

  function notify(ev) {
    if (!document.hidden || !("Notification" in window) || Notification.permission !== "granted") {
      return;
    }
    var parts = [];
    if (ev.queue) {
      parts.push(ev.queue);
    }
    if (typeof ev.wait_s === "number") {
      parts.push("waited " + duration(ev.wait_s));
    }
    try {
      var n = new Notification("Call from " + (usable(ev.caller_name) || ev.caller_number || "unknown caller"), {
        body: parts.join(" · ") || KIND_LABELS[ev.kind] || "",
        tag: "keepline-pop-" + ev.pop
      });
      n.onclick = function () {
        window.focus();
        n.close();
      };
      notifications[ev.pop] = n;
    } catch (e) {
      // Some browsers allow notifications only from a service worker: the card is enough.
    }
  }

  function openCrm(ev) {
    var url = crmLink(ev.caller_number || "");
    if (!crmOpen || !url || crmOpened[ev.pop]) {
      return;
    }
    crmOpened[ev.pop] = true;
    window.open(url, "_blank", "noopener");
  }

  // ---- the event stream ----------------------------------------------------------------

  function onPop(ev) {
    var card = showCard(ev);  // first: this is what the agent is waiting for
    remember(ev);
    notify(ev);
    openCrm(ev);
    if (!card.getAttribute("data-enriched")) {
      card.setAttribute("data-enriched", "yes");
      enrich(card, ev);
    }
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
  // The admin's policy may say agents are told when a supervisor joins their call.
  var supervised = document.getElementById("supervised");
  var supervisionWords = {listen: "is listening to", whisper: "is listening and may speak to you on",
                          barge: "has joined"};
  function onSupervision(ev) {
    if (!supervised) {
      return;
    }
    var words = supervisionWords[ev.mode];
    supervised.hidden = !words;
    supervised.textContent = words ? "A supervisor (" + String(ev.supervisor) + ") " + words +
      " this call." : "";
  }
  // Recording on demand: the buttons follow the engine's recording_changed events.
  var recordingUrl = root.getAttribute("data-recording-url") || "";
  var recordingState = document.getElementById("recording-state");
  var recordingNote = document.getElementById("recording-note");
  function showRecording(state) {
    if (!recordingState) {
      return;
    }
    recordingState.textContent = "Recording: " + (state === "recording" ? "on" :
      state === "paused" ? "paused" : "off");
    document.querySelectorAll("[data-record]").forEach(function (b) {
      var action = b.getAttribute("data-record");
      b.hidden = state === "recording" ? action === "start" || action === "resume" :
        state === "paused" ? action === "start" || action === "pause" : action !== "start";
    });
  }
  document.querySelectorAll("[data-record]").forEach(function (button) {
    button.addEventListener("click", function () {
      recordingNote.textContent = "";
      postJson(recordingUrl, {extension: extension,
                              action: button.getAttribute("data-record")})
      .then(function (body) {
        showRecording(body.state);
      }).catch(function (err) {
        recordingNote.textContent = err.message;
      });
    });
  });
  // Do-not-disturb: the toggle follows the status snapshot and dnd_changed events.
  var dndUrl = root.getAttribute("data-dnd-url") || "";
  var dndState = document.getElementById("dnd-state");
  var dndToggle = document.getElementById("dnd-toggle");
  var dndNote = document.getElementById("dnd-note");
  function showDnd(on) {
    if (!dndState || !dndToggle) {
      return;
    }
    dndState.textContent = "Do not disturb: " + (on ? "on" : "off");
    dndToggle.textContent = on ? "Turn do-not-disturb off" : "Turn do-not-disturb on";
    dndToggle.setAttribute("data-on", on ? "no" : "yes");
  }
  if (dndToggle) {
    dndToggle.addEventListener("click", function () {
      dndNote.textContent = "";
      postJson(dndUrl, {extension: extension,
                        on: dndToggle.getAttribute("data-on") === "yes"})
      .then(function (body) {
        showDnd(body.dnd === true);
      }).catch(function (err) {
        dndNote.textContent = err.message;
      });
    });
  }
  source.onmessage = function (message) {
    var ev;
    try {
      ev = JSON.parse(message.data);
    } catch (e) {
      return;
    }
    if (ev.type === "pop_shown" && String(ev.extension) === extension) {
      onPop(ev);
    } else if (ev.type === "pop_changed" && String(ev.extension) === extension) {
      setState(ev.pop, ev.state, ev.detail);
    } else if (ev.type === "pop_named" && String(ev.extension) === extension) {
      onPopName(ev);
    } else if (ev.type === "wrapup_given" && String(ev.extension) === extension) {
      onWrapup(ev);
    } else if (ev.type === "supervision_changed" && String(ev.extension) === extension) {
      onSupervision(ev);
    } else if (ev.type === "recording_changed" && String(ev.extension) === extension) {
      showRecording(ev.state);
    } else if (ev.type === "dnd_changed" && String(ev.extension) === extension) {
      showDnd(ev.on === true);
    } else if ((ev.type === "hello" || ev.type === "status") && ev.status) {
      showDnd((ev.status.dnd || []).map(String).indexOf(extension) >= 0);
    } else if (ev.type === "engine_down") {
      note.textContent = "The phone system is not reachable: " + (ev.message || "no answer") +
        ". Calls will show again when it is back.";
      note.hidden = false;
    }
  };
  source.onerror = function () {
    if (source.readyState !== EventSource.OPEN) {
      note.textContent = "Live updates paused; reconnecting…";
      note.hidden = false;
    }
  };
})();
