// Small helpers shared by the dashboard (live.js) and the agent's page
// (screenpop.js): load this file first. No framework; CSP allows no inline script.
window.KeeplineUtil = (function () {
  "use strict";

  // A new element with an optional class and text.
  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) {
      node.className = className;
    }
    if (text !== undefined && text !== null) {
      node.textContent = String(text);
    }
    return node;
  }

  function pad(n) {
    return n < 10 ? "0" + n : String(n);
  }

  // 75 -> "1:15", 3725 -> "1:02:05".
  function duration(seconds) {
    var s = Math.max(0, Math.floor(seconds));
    var h = Math.floor(s / 3600);
    var m = Math.floor((s % 3600) / 60);
    s = s % 60;
    return h ? h + ":" + pad(m) + ":" + pad(s) : m + ":" + pad(s);
  }

  // How long something has been up, with units (as web/live.py's "uptime" filter):
  // 42 -> "42 s", 514 -> "8 min 34 s", 7500 -> "2 h 5 min", 277200 -> "3 d 5 h".
  function uptime(seconds) {
    var s = Math.max(0, Math.floor(seconds));
    var d = Math.floor(s / 86400);
    var h = Math.floor((s % 86400) / 3600);
    var m = Math.floor((s % 3600) / 60);
    if (d) {
      return d + " d " + h + " h";
    }
    if (h) {
      return h + " h " + m + " min";
    }
    return m ? m + " min " + (s % 60) + " s" : (s % 60) + " s";
  }

  // A Unix time as local "HH:MM", or "HH:MM:SS" with seconds.
  function clock(ts, withSeconds) {
    var d = new Date(ts * 1000);
    var hm = pad(d.getHours()) + ":" + pad(d.getMinutes());
    return withSeconds ? hm + ":" + pad(d.getSeconds()) : hm;
  }

  return { el: el, pad: pad, duration: duration, uptime: uptime, clock: clock };
})();
