/*
 * The demo's single-page app: signs in without a page load, then gets the
 * widget's token from the middleware's endpoint through /_reqio/token.js
 * (window.ReqioIdentity.refresh() fetches /_reqio/token and calls
 * window.Reqio.identify(token)).
 *
 * The page's own text (the header's "Signed in as", the user card, the status
 * line) follows the identity the widget holds, announced by the widget as
 * `reqio:identity` events, so the page and the widget never name two users.
 */
(function () {
  "use strict";

  var status = document.getElementById("spa-status");
  var step = document.getElementById("spa-step");
  var header = document.getElementById("server-user");
  var card = document.getElementById("user-card");
  var users = {}; // sub -> {key, label}, from the sign-in buttons

  document.querySelectorAll("button[data-sign-in]").forEach(function (button) {
    users[button.getAttribute("data-sub")] = {
      key: button.getAttribute("data-sign-in"),
      label: button.getAttribute("data-label"),
    };
  });

  function el(tag, text) {
    var node = document.createElement(tag);
    node.textContent = text;
    return node;
  }

  function dollars(cents) {
    return "$" + (cents / 100).toLocaleString("en-US", {
      minimumFractionDigits: 2,
      maximumFractionDigits: 2,
    });
  }

  function markCurrent(key) {
    document.querySelectorAll(".switcher a[data-user]").forEach(function (a) {
      if (a.getAttribute("data-user") === key) {
        a.setAttribute("aria-current", "true");
      } else {
        a.removeAttribute("aria-current");
      }
    });
  }

  function describe(claims) {
    var t = claims.traits || {};
    card.textContent = "";
    var p = document.createElement("p");
    p.appendChild(document.createTextNode("The widget's verified token says: user "));
    p.appendChild(el("code", String(claims.sub)));
    if (claims.email) {
      p.appendChild(document.createTextNode(", "));
      p.appendChild(el("code", claims.email));
    }
    if (t.plan !== undefined) {
      p.appendChild(document.createTextNode(", plan "));
      p.appendChild(el("code", String(t.plan)));
    }
    if (typeof t.amount === "number") {
      var monthly = t.interval === "year" ? t.amount / 12 : t.amount;
      p.appendChild(document.createTextNode(
        ", " + dollars(t.amount) + " per " + t.interval + " (monthly value "));
      p.appendChild(el("strong", dollars(monthly)));
      p.appendChild(document.createTextNode(")"));
    }
    p.appendChild(document.createTextNode("."));
    card.appendChild(p);
  }

  function follow(detail) {
    if (!detail) {
      return;
    }
    document.body.setAttribute("data-widget-state", detail.state);
    if (detail.state === "checking") {
      status.textContent = "The widget is checking a token\u2026";
      return;
    }
    if (detail.state === "verified") {
      var sub = String(detail.claims.sub);
      var user = users[sub] || { key: null, label: "user " + sub };
      header.textContent = user.label;
      markCurrent(user.key);
      describe(detail.claims);
      status.textContent = "The widget holds the verified identity of " + user.label + ".";
      return;
    }
    header.textContent = "signed out";
    markCurrent("anonymous");
    card.textContent = "";
    card.appendChild(el("p", "Signed out: the widget holds no identity."));
    status.textContent = detail.state === "none"
      ? "The widget holds no identity: sign in below."
      : "The widget rejected its token (" + detail.reason + "): nobody is signed in for it.";
  }

  document.addEventListener("reqio:identity", function (event) {
    follow(event.detail);
  });
  // The widget loads async and may have spoken before this deferred script ran.
  follow(window.Reqio && window.Reqio.state);

  function setSession(user) {
    return fetch("/demo/session", {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "text/plain" },
      body: user,
    }).then(function (r) {
      if (!r.ok) {
        throw new Error("sign-in failed: HTTP " + r.status);
      }
      return r.json();
    });
  }

  document.querySelectorAll("button[data-sign-in]").forEach(function (button) {
    button.addEventListener("click", function () {
      step.textContent = "signing in\u2026";
      setSession(button.getAttribute("data-sign-in"))
        .then(function (session) {
          step.textContent = "signed in as " + session.label +
            "; asking /_reqio/token for a token\u2026";
          return window.ReqioIdentity.refresh();
        })
        .then(function (token) {
          step.textContent = token
            ? "got a token from /_reqio/token and called Reqio.identify(token)"
            : "the endpoint gave no token";
        })
        .catch(function (e) {
          step.textContent = String(e);
        });
    });
  });

  document.getElementById("sign-out").addEventListener("click", function () {
    setSession("anonymous").then(function () {
      window.ReqioIdentity.stop();
      if (window.Reqio && window.Reqio.identify) {
        window.Reqio.identify(null);
      }
      step.textContent = "signed out";
    });
  });
})();
