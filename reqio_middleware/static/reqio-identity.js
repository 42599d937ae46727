/*
 * reqio-identity.js: keeps the Reqio widget's identity token fresh.
 *
 * Served by reqio-middleware at `token_path + ".js"`. Load it from its own tag
 * (no inline script, no eval, so a strict CSP such as `script-src 'self'` is
 * enough):
 *
 *   <script src="/_reqio/token.js" defer></script>
 *
 * Optional attributes on that tag:
 *   data-token-url       the token endpoint (default: this script's URL
 *                        without the trailing ".js")
 *   data-refresh-margin  seconds before expiry to fetch the next token
 *                        (default 60)
 *
 * Tokens are short-lived (300 s), so a page left open must fetch new ones.
 * A token is requested:
 *   - on load, unless the widget tag already carries `data-identity-token`
 *     (then the next one is scheduled from that token's lifetime);
 *   - `margin` seconds before the current token expires (at least 5 s after
 *     it was obtained);
 *   - when the page becomes visible again after the refresh fell due
 *     (background tabs throttle timers);
 *   - when the page calls `window.ReqioIdentity.refresh()` or dispatches a
 *     `reqio:login` event on `document`, e.g. right after signing in.
 *
 * Each new token is handed to `window.Reqio.identify(token)`. The widget
 * loads `async`, so it may not exist yet: the latest token is then kept and
 * delivered as soon as `window.Reqio.identify` appears (checked every 100 ms
 * for at most 30 s, or at once on a `reqio:ready` event on `document`).
 *
 * A 401 means the visitor is signed out: refreshing stops and a
 * `reqio:signedout` event is dispatched on `document`. The widget's public
 * API documents only `identify(token)`, so nothing is called on the widget;
 * the page decides what signing out means for it. A 403 (cross-site or
 * misconfigured) also stops. Network errors and 5xx/429 answers are retried
 * with exponential backoff (1 s, 2 s, 4 s, 8 s, 16 s), then given up until
 * the next trigger. `refresh()` after a stop starts again.
 *
 * Every new token is also announced as a `reqio:token` event on `document`
 * (detail: {token, expiresAt}).
 *
 * API: window.ReqioIdentity = {refresh() -> Promise<token|null>, stop()}.
 */
(function () {
  "use strict";

  if (window.ReqioIdentity) {
    return; // loaded twice: keep the first instance
  }

  var script = document.currentScript;
  var MIN_DELAY_S = 5;
  var MAX_RETRIES = 5;
  var POLL_MS = 100;
  var POLL_LIMIT_MS = 30000;

  function attr(name) {
    return script && script.getAttribute(name);
  }

  function tokenUrl() {
    var explicit = attr("data-token-url");
    if (explicit) {
      return new URL(explicit, document.baseURI).href;
    }
    var url = new URL(script ? script.src : "/_reqio/token.js", document.baseURI);
    url.pathname = url.pathname.replace(/\.js$/, "");
    url.search = "";
    url.hash = "";
    return url.href;
  }

  var url = tokenUrl();
  var margin = parseFloat(attr("data-refresh-margin"));
  if (!(margin >= 0)) {
    margin = 60;
  }

  var timer = null;
  var dueAt = null; // performance.now() at which the next refresh is due
  var inflight = null;
  var stopped = false;
  var retries = 0;
  var pending = null; // token waiting for window.Reqio
  var pollTimer = null;
  var pollStarted = 0;

  function emit(name, detail) {
    var event;
    try {
      event = new CustomEvent(name, { detail: detail });
    } catch (e) {
      return;
    }
    document.dispatchEvent(event);
  }

  function payload(token) {
    try {
      var part = String(token).split(".")[1];
      var b64 = part.replace(/-/g, "+").replace(/_/g, "/");
      while (b64.length % 4) {
        b64 += "=";
      }
      return JSON.parse(atob(b64));
    } catch (e) {
      return null;
    }
  }

  // Seconds the token is valid for, measured from when it was minted. The
  // server's iat/exp are compared with each other, never with the client's
  // clock, so a skewed client clock does not matter.
  function lifetime(token, expiresAt) {
    var claims = payload(token);
    var exp = typeof expiresAt === "number" ? expiresAt : claims && claims.exp;
    if (typeof exp !== "number") {
      return null;
    }
    if (claims && typeof claims.iat === "number") {
      return exp - claims.iat;
    }
    return exp - Date.now() / 1000;
  }

  function clearTimer() {
    if (timer !== null) {
      clearTimeout(timer);
      timer = null;
    }
  }

  function schedule(seconds) {
    clearTimer();
    if (stopped) {
      return;
    }
    dueAt = performance.now() + seconds * 1000;
    timer = setTimeout(function () {
      timer = null;
      refresh();
    }, seconds * 1000);
  }

  // `obtainedAt` is performance.now() when the token was minted (roughly).
  function scheduleFor(token, expiresAt, obtainedAt) {
    var life = lifetime(token, expiresAt);
    if (life === null) {
      dueAt = null; // no expiry: nothing to refresh
      return;
    }
    var elapsed = (performance.now() - obtainedAt) / 1000;
    schedule(Math.max(life - margin, MIN_DELAY_S) - Math.max(elapsed, 0));
  }

  function deliver() {
    var reqio = window.Reqio;
    if (pending === null) {
      return;
    }
    if (reqio && typeof reqio.identify === "function") {
      var token = pending;
      pending = null;
      stopPolling();
      reqio.identify(token);
      return;
    }
    if (pollTimer === null) {
      pollStarted = performance.now();
      pollTimer = setInterval(function () {
        if (performance.now() - pollStarted > POLL_LIMIT_MS) {
          stopPolling(); // widget never appeared; a later token retries
          return;
        }
        deliver();
      }, POLL_MS);
    }
  }

  function stopPolling() {
    if (pollTimer !== null) {
      clearInterval(pollTimer);
      pollTimer = null;
    }
  }

  function retryLater() {
    if (retries >= MAX_RETRIES) {
      retries = 0;
      dueAt = null; // give up until visibility, login or refresh()
      return;
    }
    schedule(Math.pow(2, retries));
    retries += 1;
  }

  // Django's CSRF protection applies to the token view's POST: send its token from the
  // csrftoken cookie, as Django documents for fetch(). Other frameworks ignore the header.
  function requestHeaders() {
    var headers = { Accept: "application/json" };
    var match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
    if (match) {
      headers["X-CSRFToken"] = decodeURIComponent(match[1]);
    }
    return headers;
  }

  function fetchToken() {
    var startedAt = performance.now();
    return fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: requestHeaders(),
    }).then(
      function (response) {
        if (response.status === 200) {
          return response.json().then(function (body) {
            if (!body || typeof body.token !== "string") {
              throw new Error("reqio-identity: malformed token response");
            }
            retries = 0;
            pending = body.token;
            emit("reqio:token", { token: body.token, expiresAt: body.expires_at });
            deliver();
            scheduleFor(body.token, body.expires_at, startedAt);
            return body.token;
          });
        }
        if (response.status === 401 || response.status === 403) {
          stop();
          if (response.status === 401) {
            emit("reqio:signedout", {});
          }
          return null;
        }
        if (response.status === 429 || response.status >= 500) {
          retryLater();
          return null;
        }
        stop();
        return null;
      },
      function () {
        retryLater(); // network error
        return null;
      }
    );
  }

  function refresh() {
    stopped = false;
    if (inflight === null) {
      clearTimer();
      inflight = fetchToken().then(
        function (token) {
          inflight = null;
          return token;
        },
        function () {
          inflight = null;
          retryLater();
          return null;
        }
      );
    }
    return inflight;
  }

  function stop() {
    stopped = true;
    dueAt = null;
    retries = 0;
    clearTimer();
  }

  function onVisible() {
    if (
      document.visibilityState === "visible" &&
      !stopped &&
      dueAt !== null &&
      performance.now() >= dueAt
    ) {
      refresh();
    }
  }

  window.ReqioIdentity = { refresh: refresh, stop: stop };
  document.addEventListener("visibilitychange", onVisible);
  document.addEventListener("reqio:login", function () {
    refresh();
  });
  document.addEventListener("reqio:ready", deliver);

  // The middleware already put a token on the widget tag: the widget reads it
  // itself, so only schedule its successor (minted around navigation start).
  var tagged = document.querySelector("script[data-identity-token]");
  var initial = tagged && tagged.getAttribute("data-identity-token");
  if (initial) {
    scheduleFor(initial, null, 0);
  } else {
    refresh();
  }
})();
