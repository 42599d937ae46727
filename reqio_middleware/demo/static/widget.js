/*
 * A local stand-in for https://reqio.app/widget.js, for the offline demo.
 *
 * Like the real widget it reads `data-identity-token` from its own script tag
 * and exposes `window.Reqio.identify(token)`. Instead of opening a feedback
 * widget it sends the token to /reqio-standin/verify (next to this file),
 * which checks it as Reqio's backend would (signature, audience, expiry), and
 * shows the verified claims with a live expiry countdown.
 *
 * Every change of what it holds is announced, so the page can follow the
 * widget rather than its own idea of who is signed in: `window.Reqio.state`
 * is the latest, and a `reqio:identity` event on `document` carries each one
 * ({state: "checking" | "verified" | "none" | "error", claims, reason}).
 */
(function () {
  "use strict";

  var script = document.currentScript;
  var verifyUrl = new URL("verify", script ? script.src : location.href).href;
  var panel = null;
  var countdown = null;
  var seq = 0;

  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      node.setAttribute(k, attrs[k]);
    });
    if (text !== undefined) {
      node.textContent = text;
    }
    return node;
  }

  function getPanel() {
    if (panel) {
      return panel;
    }
    panel = document.getElementById("reqio-standin");
    if (!panel) {
      panel = el("aside", { id: "reqio-standin" });
      document.body.appendChild(panel);
    }
    return panel;
  }

  function dollars(cents) {
    return "$" + (cents / 100).toFixed(2);
  }

  function announce(detail) {
    window.Reqio.state = detail;
    document.dispatchEvent(new CustomEvent("reqio:identity", { detail: detail }));
  }

  function show(state, build) {
    if (countdown !== null) {
      clearInterval(countdown);
      countdown = null;
    }
    var p = getPanel();
    p.textContent = "";
    p.setAttribute("data-state", state);
    p.appendChild(el("h3", {}, "Reqio widget (local stand-in)"));
    build(p);
  }

  function row(dl, field, label, value) {
    dl.appendChild(el("dt", {}, label));
    dl.appendChild(el("dd", { "data-field": field }, value === undefined ? "-" : String(value)));
  }

  function showNone() {
    show("none", function (p) {
      p.appendChild(el("p", { class: "none" }, "no identity token: the visitor is anonymous"));
    });
    announce({ state: "none", claims: null });
  }

  function showError(reason) {
    show("error", function (p) {
      p.appendChild(el("p", { class: "error" }, "token rejected: " + reason));
    });
    announce({ state: "error", claims: null, reason: String(reason) });
  }

  function showClaims(result) {
    var c = result.claims;
    var t = c.traits || {};
    show("verified", function (p) {
      p.appendChild(el("p", { class: "ok" }, "\u2713 verified: " + result.checked.join(", ")));
      var dl = el("dl");
      row(dl, "token", "token", result.token.slice(0, 20) + "\u2026");
      row(dl, "sub", "sub", c.sub);
      row(dl, "email", "email", c.email);
      row(dl, "plan", "plan", t.plan);
      row(dl, "amount", "amount", t.amount === undefined ? undefined : t.amount + " cents (" + dollars(t.amount) + ")");
      row(dl, "interval", "interval", t.interval);
      row(dl, "monthly", "monthly value",
          result.monthly_value_cents === null ? undefined : dollars(result.monthly_value_cents));
      p.appendChild(dl);
      var left = el("span", { "data-field": "seconds-left" });
      var expiry = el("p", { class: "expiry" });
      expiry.appendChild(document.createTextNode("token expires in "));
      expiry.appendChild(left);
      p.appendChild(expiry);
      var deadline = performance.now() + result.seconds_left * 1000;
      function tick() {
        var s = Math.round((deadline - performance.now()) / 1000);
        if (s > 0) {
          left.textContent = s + " s";
        } else {
          left.textContent = "0 s (expired; waiting for a fresh token)";
          p.setAttribute("data-state", "expired");
        }
      }
      tick();
      countdown = setInterval(tick, 1000);
    });
    announce({ state: "verified", claims: c });
  }

  function identify(token) {
    var mine = ++seq;
    if (!token) {
      showNone();
      return;
    }
    show("checking", function (p) {
      p.appendChild(el("p", {}, "checking the token\u2026"));
    });
    announce({ state: "checking", claims: null });
    fetch(verifyUrl, {
      method: "POST",
      headers: { "Content-Type": "text/plain" },
      body: JSON.stringify({ token: token }),
    })
      .then(function (r) {
        return r.json();
      })
      .then(function (result) {
        if (mine !== seq) {
          return; // a newer token arrived meanwhile
        }
        if (result.ok) {
          result.token = token;
          showClaims(result);
        } else {
          showError(result.reason);
        }
      })
      .catch(function (e) {
        if (mine === seq) {
          showError(String(e));
        }
      });
  }

  window.Reqio = window.Reqio || {};
  window.Reqio.identify = identify;

  function start() {
    identify(script && script.getAttribute("data-identity-token"));
    document.dispatchEvent(new CustomEvent("reqio:ready"));
  }
  if (document.body) {
    start();
  } else {
    document.addEventListener("DOMContentLoaded", start);
  }
})();
