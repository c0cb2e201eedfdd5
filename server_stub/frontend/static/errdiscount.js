/*!
 * errdiscount widget: turns a structured API error carrying an alert_url into
 * an accessible compensation popup the user can redeem in one click.
 *
 * No build step, no dependencies. Load it as a classic script
 * (<script src=".../static/errdiscount.js"></script>, which sets
 * globalThis.ErrDiscount) or as an ES module through errdiscount.mjs
 * (import { ErrDiscount } from ".../static/errdiscount.mjs").
 *
 * Security rules (mirroring the Python AlertUrlPolicy, docs/errors.md):
 * alert and redemption URLs must be https (http only for hosts listed in
 * httpAllowedHosts), on a host exactly in allowedHosts, without userinfo,
 * backslashes, control characters, whitespace or non-ASCII characters, at
 * most 2048 characters. Every text is inserted with textContent.
 * See docs/frontend.md.
 */
(function (root) {
  "use strict";

  var MAX_URL_LENGTH = 2048;
  var MAX_BODY_BYTES = 64 * 1024;
  var MAX_TEXT = 4096;
  var MAX_TOKEN = 8192;
  var FETCH_TIMEOUT_MS = 15000;
  var PRINTABLE_ASCII = /^[!-~]+$/;
  var SCHEME = /^([A-Za-z][A-Za-z0-9+.\-]*):/;
  var HOST_LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
  var TEXT_KEYS = [
    "redeem", "dismiss", "close", "redeeming", "success", "already_redeemed", "expired",
    "budget_exhausted", "user_cap_reached", "failed", "coupon_code", "points", "days"
  ];
  // Server error codes that end the offer, and the text that explains them.
  var FINAL_FAILURES = {
    TOKEN_ALREADY_REDEEMED: "already_redeemed",
    TOKEN_EXPIRED: "expired",
    BUDGET_EXHAUSTED: "budget_exhausted",
    INVENTORY_EXHAUSTED: "budget_exhausted",
    USER_CAP_REACHED: "user_cap_reached"
  };
  var FOCUSABLE = "a[href], button:not([disabled]), input:not([disabled]), " +
    "select:not([disabled]), textarea:not([disabled]), [tabindex]:not([tabindex='-1'])";

  var openPopup = null;
  var idCounter = 0;

  // ---------------------------------------------------------------- URL policy

  function normaliseHost(host) {
    if (typeof host !== "string") throw new TypeError("allowed hosts must be strings");
    var h = host.trim().toLowerCase().replace(/\.+$/, "");
    if (!h || h.length > 253) throw new TypeError("invalid allowed host: " + host);
    if (h.charAt(0) === "[" && h.charAt(h.length - 1) === "]") return h;
    if (!h.split(".").every(function (label) { return HOST_LABEL.test(label); })) {
      throw new TypeError("invalid allowed host (write IDN hosts in punycode): " + host);
    }
    return h;
  }

  /**
   * An allow-list for alert URLs, with the same rules as the Python AlertUrlPolicy.
   * options: {allowedHosts, httpAllowedHosts = [], requireHttps = true,
   *           allowedPorts = null, maxLength = 2048}
   */
  function AlertUrlPolicy(options) {
    options = options || {};
    var allowed = options.allowedHosts || [];
    if (typeof allowed === "string") throw new TypeError("allowedHosts must be a list of hosts");
    this.allowedHosts = new Set(Array.from(allowed, normaliseHost));
    this.httpAllowedHosts = new Set(Array.from(options.httpAllowedHosts || [], normaliseHost));
    var self = this;
    this.httpAllowedHosts.forEach(function (h) {
      if (!self.allowedHosts.has(h)) throw new TypeError("httpAllowedHosts must also be in allowedHosts");
    });
    this.requireHttps = options.requireHttps !== false;
    this.allowedPorts = options.allowedPorts ? new Set(options.allowedPorts) : null;
    this.maxLength = options.maxLength || MAX_URL_LENGTH;
    Object.freeze(this);
  }

  /** Returns null when the URL is allowed, else the reason (same names as Python). */
  AlertUrlPolicy.prototype.rejectionReason = function (url) {
    if (typeof url !== "string") return "type";
    if (url.length > this.maxLength) return "length";
    if (!PRINTABLE_ASCII.test(url) || url.indexOf("\\") !== -1) return "characters";
    var match = SCHEME.exec(url);
    if (!match) return "scheme";
    var scheme = match[1].toLowerCase();
    if (scheme !== "https" && scheme !== "http") return "scheme";
    var rest = url.slice(match[1].length);
    if (rest.slice(0, 3) !== "://") return "scheme";
    var authority = rest.slice(3).split(/[\/?#]/, 1)[0];
    if (authority.indexOf("@") !== -1) return "userinfo";
    var host, portText = "";
    if (authority.charAt(0) === "[") {
      var close = authority.indexOf("]");
      if (close === -1) return "host";
      host = authority.slice(0, close + 1).toLowerCase();
      var after = authority.slice(close + 1);
      if (after && after.charAt(0) !== ":") return "host";
      portText = after.slice(1);
    } else {
      var colon = authority.lastIndexOf(":");
      host = (colon === -1 ? authority : authority.slice(0, colon)).toLowerCase();
      portText = colon === -1 ? "" : authority.slice(colon + 1);
    }
    host = host.replace(/\.+$/, "");
    var port = null;
    if (portText) {
      if (!/^[0-9]{1,5}$/.test(portText) || Number(portText) > 65535) return "host";
      port = Number(portText);
    }
    if (!host || !this.allowedHosts.has(host)) return "host";
    if (scheme === "http" && this.requireHttps && !this.httpAllowedHosts.has(host)) return "scheme";
    if (port !== null && this.allowedPorts && !this.allowedPorts.has(port)) {
      if (port !== (scheme === "https" ? 443 : 80)) return "port";
    }
    // Defence in depth: the browser's own parser must see the same host.
    var parsed;
    try { parsed = new URL(url); } catch (e) { return "host"; }
    if (parsed.hostname.toLowerCase().replace(/\.+$/, "") !== host || parsed.username || parsed.password) {
      return "host";
    }
    return null;
  };

  AlertUrlPolicy.prototype.isAllowed = function (url) {
    return this.rejectionReason(url) === null;
  };

  // ------------------------------------------------------------------ payloads

  function isObject(value) {
    return value !== null && typeof value === "object" && !Array.isArray(value);
  }

  function str(value, max) {
    return typeof value === "string" && value.length > 0 && value.length <= (max || MAX_TEXT)
      ? value : null;
  }

  /**
   * Recognise a structured error payload: the flat shape ({error_code, message,
   * suggestion, discount_token, alert_url}), RFC 9457 problem details with our
   * members as extensions, or an {"error": {...}} envelope carrying them.
   * Returns null when the document is not a structured error.
   */
  function recognise(doc) {
    if (!isObject(doc)) return null;
    var inner = isObject(doc.error) ? doc.error : null;
    var pick = function (name) {
      var v = str(doc[name]);
      return v !== null ? v : (inner ? str(inner[name]) : null);
    };
    var format;
    if (inner) format = "envelope";
    else if (str(doc.type) && (str(doc.title) || str(doc.detail)) || (str(doc.title) && typeof doc.status === "number")) format = "problem";
    else if (str(doc.error_code, 256) || str(doc.discount_token, MAX_TOKEN)) format = "flat";
    else return null;
    return {
      format: format,
      errorCode: pick("error_code") || (format === "problem" ? str(doc.type) : null) ||
        (inner ? str(inner.code) : null),
      message: pick("message") || str(doc.detail) || str(doc.title),
      suggestion: pick("suggestion"),
      alertUrl: typeof doc.alert_url === "string" ? doc.alert_url
        : (inner && typeof inner.alert_url === "string" ? inner.alert_url : null),
      hasDiscountToken: !!pick("discount_token")
    };
  }

  async function readJsonCapped(response) {
    var length = Number(response.headers.get("content-length"));
    if (length > MAX_BODY_BYTES) return undefined;
    if (!response.body) return undefined;
    var reader = response.body.getReader();
    var chunks = [], total = 0;
    for (;;) {
      var step = await reader.read();
      if (step.done) break;
      total += step.value.byteLength;
      if (total > MAX_BODY_BYTES) {
        reader.cancel();
        return undefined;
      }
      chunks.push(step.value);
    }
    var bytes = new Uint8Array(total), offset = 0;
    chunks.forEach(function (c) { bytes.set(c, offset); offset += c.byteLength; });
    try {
      return JSON.parse(new TextDecoder("utf-8", {fatal: true}).decode(bytes));
    } catch (e) {
      return undefined;
    }
  }

  function isJsonType(response) {
    var type = (response.headers.get("content-type") || "").split(";")[0].trim().toLowerCase();
    return type === "application/json" || /^application\/[a-z0-9.+\-]+\+json$/.test(type);
  }

  function looksLikeResponse(value) {
    return value && typeof value === "object" && typeof value.clone === "function" &&
      value.headers && typeof value.headers.get === "function";
  }

  function safeFetch(url, init) {
    init.credentials = "omit";
    init.redirect = "error"; // a redirect could leave the allow-list
    init.referrerPolicy = "no-referrer";
    init.cache = "no-store";
    if (typeof AbortSignal !== "undefined" && AbortSignal.timeout) {
      init.signal = AbortSignal.timeout(FETCH_TIMEOUT_MS);
    }
    return fetch(url, init);
  }

  function validAlert(alert, policy) {
    if (!isObject(alert) || !isObject(alert.texts) || !isObject(alert.redeem)) return false;
    if (["pending", "redeemed", "expired"].indexOf(alert.status) === -1) return false;
    if (!str(alert.title) || !str(alert.body)) return false;
    if (alert.redeem.method !== "POST" || !policy.isAllowed(alert.redeem.url)) return false;
    var token = str(alert.redeem.token, MAX_TOKEN);
    if (!token || !PRINTABLE_ASCII.test(token)) return false;
    return TEXT_KEYS.every(function (k) { return str(alert.texts[k]) !== null; });
  }

  // ----------------------------------------------------------------- rendering

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function fill(template, values) {
    return String(template).replace(/\{([a-z_]+)\}/g, function (whole, name) {
      return Object.prototype.hasOwnProperty.call(values, name) ? String(values[name]) : whole;
    });
  }

  function newId(stem) {
    idCounter += 1;
    return "errdiscount-" + stem + "-" + idCounter;
  }

  function idempotencyKey() {
    if (root.crypto && typeof root.crypto.randomUUID === "function") return root.crypto.randomUUID();
    var bytes = new Uint8Array(16);
    root.crypto.getRandomValues(bytes);
    return Array.from(bytes, function (b) { return (b + 256).toString(16).slice(1); }).join("");
  }

  // ---------------------------------------------------------------- formatting

  var CURRENCY_CODE = /^[A-Z]{3}$/;
  // The server writes the same forms for the text it renders (server_stub/frontend/_format.py);
  // a browser test holds the two together.
  var DATE_OPTIONS = {year: "numeric", month: "short", day: "numeric", hour: "numeric",
                      minute: "2-digit", timeZoneName: "short"};

  /**
   * An amount in `lang`: currency style for ISO 4217 units ("$2.00", "US$2.00", "¥2.00"),
   * a grouped plain number for points and days (the unit word is the text's), and the
   * number then the unit name for anything else.
   */
  function formatAmount(amount, unit, lang) {
    if (typeof amount !== "number" || !isFinite(amount)) return "";
    var name = typeof unit === "string" ? unit : "";
    try {
      if (CURRENCY_CODE.test(name)) {
        return new Intl.NumberFormat(lang, {style: "currency", currency: name}).format(amount);
      }
      var digits = Number.isInteger(amount) ? 0 : 2;
      var number = new Intl.NumberFormat(lang, {
        minimumFractionDigits: digits, maximumFractionDigits: digits
      }).format(amount);
      return name === "points" || name === "days" || !name ? number : number + " " + name;
    } catch (e) {
      return String(amount) + (name ? " " + name : "");
    }
  }

  /** An RFC 3339 time in `lang`, in the reader's time zone (or `timeZone`), zone shown. */
  function formatDate(value, lang, timeZone) {
    var date = typeof value === "string" ? new Date(value) : null;
    if (!date || isNaN(date.getTime())) return null;
    var options = Object.assign({}, DATE_OPTIONS);
    if (typeof timeZone === "string") options.timeZone = timeZone;
    try {
      return new Intl.DateTimeFormat(lang, options).format(date);
    } catch (e) {
      return date.toISOString();
    }
  }

  // A label ending in full-width punctuation ("您的优惠码：") takes no space after it.
  function labelGap(label) {
    return /[\u3000-\u303f\uff00-\uffef]$/.test(label) ? "" : " ";
  }

  /** Show a successful redemption's grant in `box` (all text via textContent). */
  function renderGrant(box, texts, redemption, delivery, lang) {
    // Say "added to your account" only when the server knows the grant arrived
    // (grant_delivery of the alert state); otherwise "will be credited shortly".
    var said = delivery === "delivered" || !str(texts.success_pending)
      ? texts.success : texts.success_pending;
    box.appendChild(el("p", "errdiscount-success", said));
    box.setAttribute("data-grant-delivery", delivery === "delivered" ? "delivered" : "pending");
    var grant = isObject(redemption) && isObject(redemption.grant) ? redemption.grant : {};
    var line = null;
    if (grant.kind === "coupon" && str(grant.coupon_code, 256)) {
      var p = el("p", "errdiscount-grant", texts.coupon_code + labelGap(texts.coupon_code));
      p.appendChild(el("code", "errdiscount-code", grant.coupon_code));
      box.appendChild(p);
    } else if (grant.kind === "points" && typeof grant.points === "number") {
      line = fill(texts.points, {points: formatAmount(grant.points, "points", lang)});
    } else if ((grant.kind === "membership_extension" || grant.kind === "trial_extension") &&
               typeof grant.days === "number") {
      line = fill(texts.days, {days: formatAmount(grant.days, "days", lang)});
    } else if (grant.kind === "service_credit" && grant.unit === "days" &&
               typeof grant.amount === "number") {
      line = fill(texts.days, {days: formatAmount(grant.amount, "days", lang)});
    } else if (grant.kind === "service_credit" && texts.credit) {
      line = fill(texts.credit, {amount: formatAmount(grant.amount, grant.unit, lang)});
    } else if (grant.kind === "retry_chance" && texts.retry_chance) {
      line = fill(texts.retry_chance, {count: grant.count});
    }
    // "100 points have been credited" is the same claim as "added to your account":
    // only when it is true. Pending, the success line already says "shortly".
    if (line !== null && delivery === "delivered") {
      box.appendChild(el("p", "errdiscount-grant", line));
    }
  }

  /**
   * One redemption attempt-holder: one Idempotency-Key for its whole life, one
   * request in flight at most, and no further request once an answer is final.
   */
  function Redeemer(options) {
    this.url = options.url;
    this.token = options.token;
    this.texts = options.texts;
    this.button = options.button;
    this.status = options.status;
    this.onFinal = options.onFinal || function () {};
    this.alertUrl = options.alertUrl || null;
    this.lang = options.lang || "en";
    this.quiet = false; // true: a final outcome the text already states adds no status line
    this.key = idempotencyKey();
    this.inFlight = false;
    this.final = false;
  }

  Redeemer.prototype.redeem = async function () {
    if (this.inFlight || this.final) return;
    this.inFlight = true;
    var button = this.button;
    var hadFocus = document.activeElement === button;
    button.disabled = true;
    button.setAttribute("aria-busy", "true");
    button.textContent = this.texts.redeeming;
    if (hadFocus && this.focusWhileBusy) this.focusWhileBusy.focus();
    this.status.textContent = "";
    var response = null, body;
    try {
      response = await safeFetch(this.url, {
        method: "POST",
        headers: {"Content-Type": "application/json", "Accept": "application/json",
                  "Idempotency-Key": this.key},
        body: JSON.stringify({token: this.token})
      });
      body = await readJsonCapped(response);
    } catch (e) {
      response = null;
    }
    this.inFlight = false;
    button.removeAttribute("aria-busy");
    var code = isObject(body) && typeof body.error_code === "string" ? body.error_code : null;
    if (response && response.status === 201 && isObject(body)) {
      this.delivery = await this.grantDelivery();
      this.finish("success", body);
    } else if (code && Object.prototype.hasOwnProperty.call(FINAL_FAILURES, code)) {
      this.finish(FINAL_FAILURES[code], body);
    } else if (response && code && /^TOKEN_/.test(code)) {
      this.finish("failed", body);
    } else {
      // Network failure, rate limit, key in flight, 5xx: the user may retry,
      // with the same Idempotency-Key, so a retry can never redeem twice.
      button.disabled = false;
      button.textContent = this.texts.redeem;
      this.status.textContent = this.texts.failed;
      this.status.setAttribute("data-outcome", "retry");
      if (hadFocus) button.focus();
    }
  };

  /** The alert state's grant_delivery, asked a few times (the dispatcher is quick). */
  Redeemer.prototype.grantDelivery = async function () {
    if (!this.alertUrl) return "pending";
    for (var attempt = 0; attempt < 4; attempt++) {
      try {
        var response = await safeFetch(this.alertUrl, {
          method: "GET", headers: {"Accept": "application/json"}
        });
        var state = response.ok ? await readJsonCapped(response) : null;
        if (isObject(state) && state.grant_delivery === "delivered") return "delivered";
      } catch (e) {
        return "pending";
      }
      await new Promise(function (resolve) { setTimeout(resolve, 400); });
    }
    return "pending";
  };

  Redeemer.prototype.finish = function (outcome, body) {
    this.final = true;
    this.button.hidden = true;
    this.status.textContent = "";
    this.status.setAttribute("data-outcome", outcome);
    if (outcome === "success") renderGrant(this.status, this.texts, body, this.delivery, this.lang);
    else if (!this.quiet) this.status.appendChild(el("p", "errdiscount-failure", this.texts[outcome]));
    this.onFinal(outcome, body);
  };

  function httpsUrl(value) {
    if (!str(value, MAX_URL_LENGTH) || !PRINTABLE_ASCII.test(value) || value.indexOf("\\") !== -1) return null;
    try {
      var u = new URL(value);
      return u.protocol === "https:" && !u.username && !u.password ? u.href : null;
    } catch (e) {
      return null;
    }
  }

  function Popup(alert, options) {
    var texts = alert.texts;
    var self = this;
    this.options = options;
    this.redeemed = false;
    this.previousFocus = document.activeElement;

    var titleId = newId("title"), descId = newId("desc");
    var backdrop = el("div", "errdiscount-backdrop");
    var dialog = el("div", "errdiscount-dialog");
    dialog.setAttribute("role", "dialog");
    dialog.setAttribute("aria-modal", "true");
    dialog.setAttribute("aria-labelledby", titleId);
    dialog.setAttribute("aria-describedby", descId);
    dialog.setAttribute("lang", alert.lang || options.lang || "en");
    dialog.tabIndex = -1;

    var closeButton = el("button", "errdiscount-close", "\u00d7");
    closeButton.type = "button";
    closeButton.setAttribute("aria-label", texts.close);
    closeButton.addEventListener("click", function () { self.close(); });

    var reminder = options.reminder === true && str(texts.reminder_title) && str(texts.reminder_body);
    var title = el("h2", "errdiscount-title", reminder ? texts.reminder_title : alert.title);
    title.id = titleId;
    var desc = el("div", "errdiscount-description");
    desc.id = descId;
    var problem = isObject(alert.error) && str(alert.error.explanation)
      ? alert.error.explanation : (isObject(alert.error) ? str(alert.error.code) : "") || "";
    var summary = isObject(alert.compensation) ? str(alert.compensation.summary) || "" : "";
    desc.appendChild(el("p", "errdiscount-body", reminder
      ? fill(texts.reminder_body, {problem: problem.replace(/[。.]$/, ""), summary: summary})
      : alert.body));
    if (reminder) dialog.setAttribute("data-errdiscount-reminder", "true");
    // The error's story and advice ("try again") only while there is something to redeem.
    var error = isObject(alert.error) && !reminder && alert.status === "pending" ? alert.error : {};
    if (str(error.explanation)) desc.appendChild(el("p", "errdiscount-explanation", error.explanation));
    if (str(error.suggestion)) desc.appendChild(el("p", "errdiscount-suggestion", error.suggestion));

    dialog.appendChild(closeButton);
    dialog.appendChild(title);
    dialog.appendChild(desc);

    var expires = formatDate(alert.expires_at, alert.lang);
    if (expires && str(texts.expires) && alert.status !== "redeemed") {
      dialog.appendChild(el("p", "errdiscount-expires", texts.expires + " " + expires));
    }
    var terms = httpsUrl(alert.terms_url);
    if (terms && str(texts.terms)) {
      var link = el("a", "errdiscount-terms", texts.terms);
      link.href = terms;
      link.target = "_blank";
      link.rel = "noopener noreferrer";
      dialog.appendChild(link);
    }

    var status = el("div", "errdiscount-status");
    status.setAttribute("role", "status");
    status.setAttribute("aria-live", "polite");
    var actions = el("div", "errdiscount-actions");
    var redeemButton = el("button", "errdiscount-redeem", texts.redeem);
    redeemButton.type = "button";
    var dismissButton = el("button", "errdiscount-dismiss", texts.dismiss);
    dismissButton.type = "button";
    dismissButton.addEventListener("click", function () { self.close(); });
    actions.appendChild(redeemButton);
    actions.appendChild(dismissButton);
    dialog.appendChild(status);
    dialog.appendChild(actions);
    backdrop.appendChild(dialog);

    this.redeemer = new Redeemer({
      url: alert.redeem.url, token: alert.redeem.token, texts: texts,
      button: redeemButton, status: status, alertUrl: options.alertUrl,
      lang: alert.lang || options.lang,
      onFinal: function (outcome, body) {
        dismissButton.textContent = texts.close;
        dismissButton.focus();
        if (outcome === "success") {
          self.redeemed = true;
          if (typeof options.onRedeemed === "function") options.onRedeemed(body);
        }
      }
    });
    this.redeemer.focusWhileBusy = dialog;
    redeemButton.addEventListener("click", function () { self.redeemer.redeem(); });
    if (alert.status !== "pending") {
      // The body already says "already redeemed" / "expired": the status stays quiet.
      this.redeemer.quiet = true;
      this.redeemer.finish(alert.status === "redeemed" ? "already_redeemed" : "expired", null);
      dismissButton.textContent = texts.close;
    }

    this.backdrop = backdrop;
    this.dialog = dialog;
    this.onKeyDown = function (event) { self.keyDown(event); };
    this.onFocusIn = function (event) {
      if (!dialog.contains(event.target)) self.focusFirst();
    };
    document.addEventListener("keydown", this.onKeyDown, true);
    document.addEventListener("focusin", this.onFocusIn, true);
    document.body.appendChild(backdrop);
    this.focusFirst();
  }

  Popup.prototype.focusables = function () {
    return Array.prototype.filter.call(this.dialog.querySelectorAll(FOCUSABLE), function (node) {
      return !node.hidden && node.getClientRects().length > 0;
    });
  };

  Popup.prototype.focusFirst = function () {
    var redeem = this.dialog.querySelector(".errdiscount-redeem");
    var target = redeem && !redeem.hidden && !redeem.disabled ? redeem : this.focusables()[0];
    (target || this.dialog).focus();
  };

  Popup.prototype.keyDown = function (event) {
    if (event.key === "Escape") {
      event.preventDefault();
      event.stopPropagation();
      this.close();
      return;
    }
    if (event.key !== "Tab") return;
    var items = this.focusables();
    if (items.length === 0) {
      event.preventDefault();
      this.dialog.focus();
      return;
    }
    var first = items[0], last = items[items.length - 1];
    var active = document.activeElement;
    if (event.shiftKey && (active === first || active === this.dialog || !this.dialog.contains(active))) {
      event.preventDefault();
      last.focus();
    } else if (!event.shiftKey && (active === last || !this.dialog.contains(active))) {
      event.preventDefault();
      first.focus();
    }
  };

  Popup.prototype.close = function () {
    if (openPopup !== this) return;
    openPopup = null;
    document.removeEventListener("keydown", this.onKeyDown, true);
    document.removeEventListener("focusin", this.onFocusIn, true);
    this.backdrop.remove();
    var previous = this.previousFocus;
    if (previous && previous.isConnected && typeof previous.focus === "function") previous.focus();
    if (typeof this.options.onDismiss === "function") this.options.onDismiss({redeemed: this.redeemed});
  };

  // ------------------------------------------------------------------- public

  function policyFor(options) {
    if (options.policy instanceof AlertUrlPolicy) return options.policy;
    var hosts = options.allowedHosts;
    if (!hosts && typeof options.serverUrl === "string") {
      hosts = [new URL(options.serverUrl).hostname];
    }
    return new AlertUrlPolicy({
      allowedHosts: hosts || [],
      httpAllowedHosts: options.httpAllowedHosts || [],
      requireHttps: options.requireHttps,
      allowedPorts: options.allowedPorts,
      maxLength: options.maxLength
    });
  }

  function outcome(shown, reason, payload) {
    return {shown: shown, reason: reason, payload: payload || null};
  }

  /**
   * Handle a failed API call: if its body is a structured error with an allowed
   * alert_url, fetch the alert and show the compensation popup.
   *
   * responseOrPayload: a fetch Response (its body is read from a clone, capped
   * at 64 KiB) or an already decoded object.
   * options: {serverUrl, lang, allowedHosts, httpAllowedHosts, allowedPorts,
   *           onRedeemed(redemption), onDismiss({redeemed})}
   * Resolves to {shown, reason, payload}; never rejects.
   */
  async function handleError(responseOrPayload, options) {
    options = options || {};
    var doc = responseOrPayload;
    try {
      if (looksLikeResponse(responseOrPayload)) {
        if (responseOrPayload.bodyUsed) return outcome(false, "body_used");
        if (!isJsonType(responseOrPayload)) return outcome(false, "not_structured");
        doc = await readJsonCapped(responseOrPayload.clone());
      }
      var payload = recognise(doc);
      if (!payload) return outcome(false, "not_structured");
      if (payload.alertUrl === null) return outcome(false, "no_alert_url", payload);
      var policy = policyFor(options);
      var reason = policy.rejectionReason(payload.alertUrl);
      if (reason !== null) return outcome(false, "unsafe_alert_url:" + reason, payload);
      if (openPopup) return outcome(false, "already_open", payload);
      var url = new URL(payload.alertUrl);
      if (options.lang) url.searchParams.set("lang", String(options.lang));
      var response = await safeFetch(url.href, {method: "GET", headers: {"Accept": "application/json"}});
      if (!response.ok || !isJsonType(response)) return outcome(false, "alert_unavailable", payload);
      var alert = await readJsonCapped(response);
      if (!validAlert(alert, policy)) return outcome(false, "alert_invalid", payload);
      if (openPopup) return outcome(false, "already_open", payload);
      openPopup = new Popup(alert, Object.assign({}, options, {alertUrl: url.href}));
      return outcome(true, null, payload);
    } catch (e) {
      return outcome(false, "error");
    }
  }

  /**
   * The next-login reminder: read the signed-in user's pending compensations
   * (GET /v1/me/compensations with the session token from POST /v1/sessions),
   * show the first one not yet seen ("the problem you met last time is fixed"),
   * with the same one-click, idempotent redemption, and mark it seen.
   *
   * options: {serverUrl, sessionToken, lang, onRedeemed, onDismiss}
   * Resolves to {shown, reason, payload}; never rejects.
   */
  async function showPending(options) {
    options = options || {};
    try {
      if (openPopup) return outcome(false, "already_open");
      if (typeof options.serverUrl !== "string" || !str(options.sessionToken, 1024)) {
        return outcome(false, "bad_options");
      }
      var base = new URL(options.serverUrl);
      var auth = {"Accept": "application/json", "Authorization": "Bearer " + options.sessionToken};
      var listUrl = new URL("/v1/me/compensations", base);
      if (options.lang) listUrl.searchParams.set("lang", String(options.lang));
      var response = await safeFetch(listUrl.href, {method: "GET", headers: auth});
      if (!response.ok || !isJsonType(response)) return outcome(false, "session_refused");
      var mine = await readJsonCapped(response);
      var pending = isObject(mine) && Array.isArray(mine.pending) ? mine.pending : [];
      var next = pending.filter(function (p) { return isObject(p) && p.seen === false; })[0];
      if (!next || !str(next.alert_url, 2048) || !str(next.jti, 128)) {
        return outcome(false, "nothing_pending");
      }
      var policy = policyFor({serverUrl: options.serverUrl,
        httpAllowedHosts: base.protocol === "http:" ? [base.hostname] : []});
      if (!policy.isAllowed(next.alert_url)) return outcome(false, "unsafe_alert_url", next);
      var alertUrl = new URL(next.alert_url);
      if (options.lang) alertUrl.searchParams.set("lang", String(options.lang));
      var alertResponse = await safeFetch(alertUrl.href, {
        method: "GET", headers: {"Accept": "application/json"}
      });
      if (!alertResponse.ok || !isJsonType(alertResponse)) return outcome(false, "alert_unavailable");
      var alert = await readJsonCapped(alertResponse);
      if (!validAlert(alert, policy)) return outcome(false, "alert_invalid");
      if (openPopup) return outcome(false, "already_open");
      openPopup = new Popup(alert, Object.assign({}, options, {
        reminder: true, alertUrl: alertUrl.href
      }));
      var seenUrl = new URL("/v1/me/compensations/" + encodeURIComponent(next.jti) + "/seen", base);
      await safeFetch(seenUrl.href, {method: "POST", headers: auth});
      return outcome(true, null, next);
    } catch (e) {
      return outcome(false, "error");
    }
  }

  /** Wire up a server-rendered redemption page (GET /v1/alerts/{id} as HTML). */
  function mountPage(container) {
    if (!container || container.getAttribute("data-errdiscount-mounted")) return;
    container.setAttribute("data-errdiscount-mounted", "true");
    var texts;
    try { texts = JSON.parse(container.getAttribute("data-texts") || "{}"); } catch (e) { return; }
    var button = container.querySelector("[data-errdiscount-redeem]");
    var status = container.querySelector("[data-errdiscount-status]");
    if (!button || !status) return;
    var policy = new AlertUrlPolicy({
      allowedHosts: [root.location.hostname],
      httpAllowedHosts: root.location.protocol === "http:" ? [root.location.hostname] : []
    });
    var url = container.getAttribute("data-redeem-url");
    if (!policy.isAllowed(url)) return;
    var redeemer = new Redeemer({
      url: url, token: container.getAttribute("data-token"), texts: texts,
      button: button, status: status, alertUrl: root.location.href,
      lang: document.documentElement.lang || "en"
    });
    redeemer.focusWhileBusy = status;
    button.addEventListener("click", function () { redeemer.redeem(); });
    button.disabled = false;
  }

  /** The page's times (written in UTC by the server) in the reader's own time zone. */
  function localiseTimes(container) {
    var lang = document.documentElement.lang || "en";
    Array.prototype.forEach.call(container.querySelectorAll("time[datetime]"), function (node) {
      var local = formatDate(node.getAttribute("datetime"), lang);
      if (local) node.textContent = local;
    });
  }

  function autoMount() {
    var pages = document.querySelectorAll("[data-errdiscount-page]");
    Array.prototype.forEach.call(pages, localiseTimes);
    Array.prototype.forEach.call(pages, mountPage);
  }

  var ErrDiscount = Object.freeze({
    version: "1",
    handleError: handleError,
    showPending: showPending,
    recognise: recognise,
    formatAmount: formatAmount,
    formatDate: formatDate,
    AlertUrlPolicy: AlertUrlPolicy,
    mountPage: mountPage,
    isOpen: function () { return openPopup !== null; },
    close: function () { if (openPopup) openPopup.close(); }
  });
  root.ErrDiscount = ErrDiscount;

  if (typeof document !== "undefined") {
    if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", autoMount);
    else autoMount();
  }
})(typeof globalThis !== "undefined" ? globalThis : self);
