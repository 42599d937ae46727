/*
 * The demo's single-page app: signs in without a page load, then gets the
 * widget's token from the middleware's endpoint through /_reqio/token.js
 * (window.ReqioIdentity.refresh() fetches /_reqio/token and calls
 * window.Reqio.identify(token)).
 */
(function () {
  "use strict";

  var status = document.getElementById("spa-status");

  function say(text) {
    status.textContent = text;
  }

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
      say("signing in\u2026");
      setSession(button.getAttribute("data-sign-in"))
        .then(function (session) {
          say("signed in as " + session.label + "; asking /_reqio/token for a token\u2026");
          return window.ReqioIdentity.refresh();
        })
        .then(function (token) {
          say(token ? "got a token from /_reqio/token and called Reqio.identify(token)"
                    : "the endpoint gave no token");
        })
        .catch(function (e) {
          say(String(e));
        });
    });
  });

  document.getElementById("sign-out").addEventListener("click", function () {
    setSession("anonymous").then(function () {
      window.ReqioIdentity.stop();
      if (window.Reqio && window.Reqio.identify) {
        window.Reqio.identify(null);
      }
      say("signed out");
    });
  });
})();
