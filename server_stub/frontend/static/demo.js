// The demo shop (GET /demo): calls a payment API that fails on purpose and
// hands the failed response to the errdiscount widget. Loaded as a file, not
// inline, so the page's Content-Security-Policy needs no 'unsafe-inline'.
(function () {
  "use strict";

  function start() {
    var main = document.querySelector("[data-errdiscount-demo]");
    if (!main || !globalThis.ErrDiscount) return;
    var texts = JSON.parse(main.getAttribute("data-texts") || "{}");
    var lang = main.getAttribute("data-lang") || "en";
    var button = main.querySelector("[data-errdiscount-pay]");
    var status = main.querySelector("[data-errdiscount-demo-status]");
    var host = location.hostname;

    var busy = false;
    // The button stays enabled (aria-busy instead of disabled) so it keeps the
    // focus, which the widget hands back to it when the popup closes.
    function done() {
      busy = false;
      button.removeAttribute("aria-busy");
    }
    button.addEventListener("click", async function () {
      if (busy) return;
      busy = true;
      button.setAttribute("aria-busy", "true");
      status.textContent = texts.paying;
      var response = await fetch(main.getAttribute("data-api"), {
        method: "POST", headers: {"Accept": "application/json"}, credentials: "same-origin"
      });
      if (response.ok) {
        status.textContent = "";
        done();
        return;
      }
      var result = await globalThis.ErrDiscount.handleError(response, {
        serverUrl: location.origin,
        lang: lang,
        allowedHosts: [host],
        // plain http is allowed only for the demo's own (loopback) host
        httpAllowedHosts: location.protocol === "http:" ? [host] : [],
        onRedeemed: function () { status.textContent = texts.redeemed; },
        onDismiss: function (info) {
          if (!info.redeemed) status.textContent = texts.dismissed;
          done();
        }
      });
      var code = result.payload && result.payload.errorCode ? result.payload.errorCode : "?";
      status.textContent = texts.failed.replace("{code}", code);
      main.setAttribute("data-widget-result", result.shown ? "shown" : String(result.reason));
      if (!result.shown) done();
    });
    button.disabled = false;
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
