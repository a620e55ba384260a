/*! chatrec chat widget: one self-contained script, no dependencies.
 *
 *   <script src="https://chat.example/widget.js" data-site-key="crk_..." defer></script>
 *
 * Optional attributes on the same tag:
 *   data-api       API base URL (default: the origin this script was loaded from)
 *   data-title     panel title (default "Shop assistant")
 *   data-user-token  a signed user token for the logged-in customer (personalised answers): a
 *                  short-lived JWT your shop's backend makes with the site key's signing secret
 *                  (docs/security.md). Never a bare user id: the server ignores those.
 *   data-currency  ISO currency code for prices (default "USD")
 *   data-open      "true" to start with the panel open
 *
 * Everything lives in a Shadow DOM, so the host page's CSS cannot break it. Text that
 * comes from the model or the catalogue is only ever inserted with textContent.
 */
(function () {
  "use strict";

  var script = document.currentScript ||
    document.querySelector("script[data-site-key][src*='widget.js']") ||
    document.querySelector("script[src*='widget.js']");
  if (!script || script.getAttribute("data-chatrec-loaded")) return;
  script.setAttribute("data-chatrec-loaded", "1");

  var cfg = {
    siteKey: script.getAttribute("data-site-key") || "",
    api: (script.getAttribute("data-api") || new URL(script.src, location.href).origin).replace(/\/+$/, ""),
    title: script.getAttribute("data-title") || "Shop assistant",
    userToken: script.getAttribute("data-user-token") || null,
    currency: script.getAttribute("data-currency") || "USD",
    startOpen: script.getAttribute("data-open") === "true"
  };
  // The token's subject only keeps two customers' saved chats apart in this browser; the
  // server verifies the token, nothing here trusts it.
  function tokenSubject(tok) {
    try {
      var part = tok.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
      var sub = JSON.parse(atob(part + "===".slice((part.length + 3) % 4))).sub;
      return typeof sub === "string" && sub ? sub : "user";
    } catch (e) { return "user"; }
  }
  var STORE_KEY = "chatrec:" + cfg.api + ":" + cfg.siteKey + ":" + (cfg.userToken ? tokenSubject(cfg.userToken) : "guest");
  var MAX_SAVED = 60;
  var MAX_CHARS = 2000;

  // ------------------------------------------------------------------ storage

  function load() {
    try {
      var raw = window.localStorage.getItem(STORE_KEY);
      var data = raw ? JSON.parse(raw) : null;
      if (data && typeof data === "object" && Array.isArray(data.messages)) return data;
    } catch (e) { /* storage disabled or corrupt: start fresh */ }
    return { conversationId: null, messages: [], open: false };
  }

  function save() {
    try {
      state.messages = state.messages.slice(-MAX_SAVED);
      window.localStorage.setItem(STORE_KEY, JSON.stringify(state));
    } catch (e) { /* quota or privacy mode: the chat still works, it just is not kept */ }
  }

  var state = load();

  // ------------------------------------------------------------------ helpers

  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    if (attrs) {
      for (var k in attrs) {
        if (!Object.prototype.hasOwnProperty.call(attrs, k)) continue;
        if (k === "className") node.className = attrs[k];
        else node.setAttribute(k, attrs[k]);
      }
    }
    if (text != null) node.textContent = String(text);
    return node;
  }

  var SVG_NS = "http://www.w3.org/2000/svg";
  var THUMB = "M1 21h4V9H1v12zm22-11c0-1.1-.9-2-2-2h-6.31l.95-4.57.03-.32c0-.41-.17-.79-.44-1.06L14.17 1 " +
    "7.59 7.59C7.22 7.95 7 8.45 7 9v10c0 1.1.9 2 2 2h9c.83 0 1.54-.5 1.84-1.22l3.02-7.05c.09-.23.14-.47.14-.73v-2z";

  function icon(d) {
    var svg = document.createElementNS(SVG_NS, "svg");
    svg.setAttribute("viewBox", "0 0 24 24");
    svg.setAttribute("aria-hidden", "true");
    svg.setAttribute("focusable", "false");
    var p = document.createElementNS(SVG_NS, "path");
    p.setAttribute("d", d);
    svg.appendChild(p);
    return svg;
  }

  var priceFormat;
  try {
    priceFormat = new Intl.NumberFormat(undefined, { style: "currency", currency: cfg.currency });
  } catch (e) {
    priceFormat = { format: function (n) { return cfg.currency + " " + Number(n).toFixed(2); } };
  }

  function headers() {
    var h = { "Content-Type": "application/json" };
    if (cfg.siteKey) h["X-Site-Key"] = cfg.siteKey;
    if (cfg.userToken) h["X-User-Token"] = cfg.userToken;
    return h;
  }

  function errorText(status, body, retryAfter) {
    if (status === 429 || status === 503) {
      var wait = parseInt(retryAfter || "", 10);
      return "I'm a bit busy right now. Please try again" + (wait > 0 ? " in " + wait + " seconds." : " shortly.");
    }
    if (status === 400 && body && typeof body.detail === "string") return "Sorry, I can't take that message: " + body.detail + ".";
    if (status === 401 && body && body.detail && String(body.detail).indexOf("user token") >= 0) {
      return "Your session has expired. Please reload the page.";
    }
    if (status === 401 || status === 403) return "The chat is not available on this page.";
    if (status === 404) return "That conversation has ended. Please send your message again to start a new one.";
    if (status === 413) return "That message is too long.";
    return "Sorry, something went wrong. Please try again.";
  }

  // ------------------------------------------------------------------ styles

  var CSS = [
    ":host{all:initial}",
    ".w{all:initial;display:block;font:14px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;",
    "color:#1d2330;letter-spacing:normal;text-align:left;direction:ltr}",
    "*,*::before,*::after{box-sizing:border-box}",
    ".act svg{width:16px;height:16px;fill:currentColor;vertical-align:-3px}",
    ".down svg{transform:rotate(180deg)}",
    "button{font:inherit;cursor:pointer}",
    ":focus-visible{outline:3px solid #2563eb;outline-offset:2px}",
    ".launcher{width:56px;height:56px;border-radius:50%;border:0;background:#1f4fd1;color:#fff;",
    "box-shadow:0 4px 14px rgba(0,0,0,.25);display:flex;align-items:center;justify-content:center}",
    ".launcher svg{width:28px;height:28px;fill:currentColor}",
    ".panel{position:absolute;right:0;bottom:68px;width:min(380px,calc(100vw - 32px));",
    "height:min(600px,calc(100vh - 100px));background:#fff;border-radius:14px;",
    "box-shadow:0 10px 40px rgba(0,0,0,.28);display:flex;flex-direction:column;overflow:hidden}",
    ".panel[hidden]{display:none}",
    ".head{display:flex;align-items:center;gap:8px;padding:12px 14px;background:#1f4fd1;color:#fff}",
    ".head h2{flex:1;margin:0;font-size:16px;font-weight:600}",
    ".icon{background:transparent;border:0;color:inherit;min-width:32px;height:32px;border-radius:6px;font-size:13px}",
    ".icon:hover{background:rgba(255,255,255,.18)}",
    ".log{flex:1;overflow-y:auto;padding:12px;display:flex;flex-direction:column;gap:10px;background:#f5f7fb}",
    ".msg{max-width:88%;padding:8px 11px;border-radius:12px;white-space:pre-wrap;overflow-wrap:anywhere}",
    ".user{align-self:flex-end;background:#1f4fd1;color:#fff;border-bottom-right-radius:4px}",
    ".bot{align-self:flex-start;background:#fff;border:1px solid #dde3ee;border-bottom-left-radius:4px}",
    ".bot.pending{color:#5b6475}",
    ".note{align-self:center;color:#5b6475;font-size:12px;text-align:center}",
    ".cards{align-self:stretch;display:flex;flex-direction:column;gap:8px}",
    ".card{background:#fff;border:1px solid #dde3ee;border-radius:10px;padding:10px}",
    ".card h3{margin:0 0 2px;font-size:14px;font-weight:600}",
    ".price{font-weight:600;color:#0f5132}",
    ".reason{margin:4px 0 8px;color:#3b4354;font-size:13px}",
    ".actions{display:flex;gap:6px;flex-wrap:wrap}",
    ".act{border:1px solid #c5cede;background:#fff;border-radius:8px;padding:4px 10px;min-height:32px}",
    ".act[aria-pressed=true]{background:#e6eeff;border-color:#1f4fd1}",
    ".act.accept{background:#1f4fd1;color:#fff;border-color:#1f4fd1}",
    ".act:disabled{opacity:.65;cursor:default}",
    ".rate{display:flex;gap:6px;align-self:flex-start}",
    "form{display:flex;gap:8px;padding:10px;border-top:1px solid #dde3ee;background:#fff}",
    "textarea{flex:1;resize:none;border:1px solid #c5cede;border-radius:8px;padding:8px;font:inherit;",
    "min-height:40px;max-height:120px;color:inherit;background:#fff}",
    ".send{border:0;border-radius:8px;background:#1f4fd1;color:#fff;padding:0 14px;min-height:40px}",
    ".send:disabled{opacity:.6;cursor:default}",
    ".sr{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap}",
    "@media (max-width:480px){",
    ".panel{position:fixed;inset:0;width:100vw;height:100%;border-radius:0}",
    ".panel:not([hidden])+.launcher{display:none}}",
    "@media (prefers-reduced-motion:no-preference){.launcher{transition:transform .15s}.launcher:hover{transform:scale(1.06)}}"
  ].join("\n");

  // ------------------------------------------------------------------ DOM

  // A custom element name: host-page rules for div, section ... never match it, and the few
  // properties that place it are set inline with !important, which page CSS cannot override.
  var host = el("chatrec-widget", { "data-chatrec-widget": "" });
  var hostStyle = { position: "fixed", right: "16px", bottom: "16px", left: "auto", top: "auto",
    "z-index": "2147483000", display: "block", width: "auto", height: "auto", margin: "0", padding: "0",
    border: "0", transform: "none", visibility: "visible", opacity: "1" };
  for (var prop in hostStyle) host.style.setProperty(prop, hostStyle[prop], "important");
  var root = host.attachShadow({ mode: "open" });
  var sheetOk = false;
  try {
    var sheet = new CSSStyleSheet();
    sheet.replaceSync(CSS);
    root.adoptedStyleSheets = [sheet];
    sheetOk = true;
  } catch (e) { /* older browsers */ }
  if (!sheetOk) root.appendChild(el("style", null, CSS));

  var uid = "chatrec-" + Math.random().toString(36).slice(2, 8);
  var launcher = el("button", { className: "launcher", type: "button", "aria-label": "Open chat with " + cfg.title,
    "aria-expanded": "false", "aria-controls": uid + "-panel" });
  launcher.appendChild(icon("M4 3h16a2 2 0 0 1 2 2v11a2 2 0 0 1-2 2H9l-5 4v-4a2 2 0 0 1-2-2V5a2 2 0 0 1 2-2z"));

  var panel = el("section", { className: "panel", id: uid + "-panel", role: "dialog", "aria-modal": "false",
    "aria-labelledby": uid + "-title" });
  panel.hidden = true;
  var head = el("div", { className: "head" });
  var title = el("h2", { id: uid + "-title" }, cfg.title);
  var resetBtn = el("button", { className: "icon", type: "button", "aria-label": "Start a new conversation" }, "New");
  var closeBtn = el("button", { className: "icon", type: "button", "aria-label": "Close chat" }, "\u2715");
  head.appendChild(title);
  head.appendChild(resetBtn);
  head.appendChild(closeBtn);

  var log = el("div", { className: "log", role: "log", "aria-live": "polite", "aria-relevant": "additions",
    "aria-label": "Conversation", tabindex: "0" });
  var form = el("form", { "aria-label": "Send a message" });
  var label = el("label", { className: "sr", "for": uid + "-input" }, "Message");
  var input = el("textarea", { id: uid + "-input", rows: "1", maxlength: String(MAX_CHARS),
    placeholder: "Ask about orders, returns or products\u2026", autocomplete: "off" });
  var sendBtn = el("button", { className: "send", type: "submit", "aria-label": "Send message" }, "Send");
  form.appendChild(label);
  form.appendChild(input);
  form.appendChild(sendBtn);
  panel.appendChild(head);
  panel.appendChild(log);
  panel.appendChild(form);
  var wrap = el("div", { className: "w" });
  wrap.appendChild(panel);
  wrap.appendChild(launcher);
  root.appendChild(wrap);

  // ------------------------------------------------------------------ rendering

  function scrollDown() { log.scrollTop = log.scrollHeight; }

  function sendFeedback(msg, kind, itemId) {
    var convId = msg.conversationId || state.conversationId;
    if (!convId) return Promise.resolve(false);
    var body = { conversation_id: convId, turn_id: msg.turnId, kind: kind };
    if (itemId) body.item_id = itemId;
    return fetch(cfg.api + "/v1/feedback", { method: "POST", headers: headers(), body: JSON.stringify(body),
      credentials: "omit" }).then(function (r) { return r.ok; }, function () { return false; });
  }

  function renderRate(msg) {
    if (!msg.turnId) return null;
    var box = el("div", { className: "rate", role: "group", "aria-label": "Rate this answer" });
    [["thumbs_up", "up", "Helpful answer"], ["thumbs_down", "down", "Unhelpful answer"]]
      .forEach(function (spec) {
        var b = el("button", { className: "act " + spec[1], type: "button", "aria-label": spec[2],
          "aria-pressed": msg.rated === spec[0] ? "true" : "false" });
        b.appendChild(icon(THUMB));
        if (msg.rated) b.disabled = true;
        b.addEventListener("click", function () {
          if (msg.rated) return;
          msg.rated = spec[0];
          save();
          box.querySelectorAll("button").forEach(function (x) { x.disabled = true; });
          b.setAttribute("aria-pressed", "true");
          sendFeedback(msg, spec[0]);
        });
        box.appendChild(b);
      });
    return box;
  }

  function renderCards(msg) {
    var recs = msg.recs || [];
    if (!recs.length) return null;
    var list = el("div", { className: "cards", role: "list", "aria-label": "Recommended products" });
    msg.itemFeedback = msg.itemFeedback || {};
    recs.forEach(function (rec) {
      var card = el("article", { className: "card", role: "listitem" });
      var name = el("h3", null, rec.title);
      card.appendChild(name);
      if (rec.price !== null && rec.price !== undefined) {
        card.appendChild(el("div", { className: "price" }, priceFormat.format(Number(rec.price))));
      }
      if (rec.reason) card.appendChild(el("p", { className: "reason" }, rec.reason));
      var actions = el("div", { className: "actions" });
      var done = msg.itemFeedback[rec.item_id] || {};
      function button(kind, text, aria, extraClass) {
        var b = el("button", { className: "act" + (extraClass ? " " + extraClass : ""), type: "button",
          "aria-label": aria + ": " + rec.title }, kind === "accept" ? text : null);
        if (kind !== "accept") b.appendChild(icon(THUMB));
        if (kind !== "accept") b.setAttribute("aria-pressed", done[kind] ? "true" : "false");
        if (done[kind] || (kind !== "accept" && (done.thumbs_up || done.thumbs_down))) b.disabled = true;
        b.addEventListener("click", function () {
          if (!msg.turnId) return;
          done[kind] = true;
          msg.itemFeedback[rec.item_id] = done;
          save();
          if (kind === "accept") {
            b.textContent = "Added \u2713";
            b.disabled = true;
          } else {
            actions.querySelectorAll("button[aria-pressed]").forEach(function (x) { x.disabled = true; });
            b.setAttribute("aria-pressed", "true");
          }
          sendFeedback(msg, kind, rec.item_id);
        });
        return b;
      }
      actions.appendChild(button("thumbs_up", "", "Good suggestion", "up"));
      actions.appendChild(button("thumbs_down", "", "Not for me", "down"));
      actions.appendChild(button("accept", done.accept ? "Added \u2713" : "Accept", "Accept", "accept"));
      card.appendChild(actions);
      list.appendChild(card);
    });
    return list;
  }

  function renderMessage(msg) {
    var wrap = document.createDocumentFragment();
    if (msg.role === "note") {
      wrap.appendChild(el("div", { className: "note" }, msg.text));
      return wrap;
    }
    var bubble = el("div", { className: "msg " + (msg.role === "user" ? "user" : "bot") }, msg.text);
    if (msg.role === "user") bubble.appendChild(el("span", { className: "sr" }, " (you)"));
    wrap.appendChild(bubble);
    var cards = renderCards(msg);
    if (cards) wrap.appendChild(cards);
    var rate = renderRate(msg);
    if (rate) wrap.appendChild(rate);
    return wrap;
  }

  function renderAll() {
    while (log.firstChild) log.removeChild(log.firstChild);
    if (!state.messages.length) {
      log.appendChild(el("div", { className: "note" }, "Hi! Ask me about orders, returns, or for product advice."));
    }
    state.messages.forEach(function (m) { log.appendChild(renderMessage(m)); });
    scrollDown();
  }

  // ------------------------------------------------------------------ open / close

  function open() {
    panel.hidden = false;
    launcher.setAttribute("aria-expanded", "true");
    launcher.setAttribute("aria-label", "Close chat with " + cfg.title);
    state.open = true;
    save();
    scrollDown();
    input.focus();
  }

  function close() {
    panel.hidden = true;
    launcher.setAttribute("aria-expanded", "false");
    launcher.setAttribute("aria-label", "Open chat with " + cfg.title);
    state.open = false;
    save();
    launcher.focus();
  }

  launcher.addEventListener("click", function () { if (panel.hidden) open(); else close(); });
  closeBtn.addEventListener("click", close);
  root.addEventListener("keydown", function (e) {
    if (e.key === "Escape" && !panel.hidden) { e.preventDefault(); close(); }
  });
  resetBtn.addEventListener("click", function () {
    if (busy) return;
    state.conversationId = null;
    state.messages = [];
    save();
    renderAll();
    input.focus();
  });

  // ------------------------------------------------------------------ SSE over fetch

  function parseEvents(buffer, onEvent) {
    // Returns the unparsed tail. Events are separated by a blank line.
    var parts = buffer.split(/\r\n\r\n|\n\n|\r\r/);
    var tail = parts.pop();
    parts.forEach(function (block) {
      var event = "message", data = [];
      block.split(/\r\n|\n|\r/).forEach(function (line) {
        if (!line || line.charAt(0) === ":") return;
        var i = line.indexOf(":");
        var field = i < 0 ? line : line.slice(0, i);
        var value = i < 0 ? "" : line.slice(i + 1).replace(/^ /, "");
        if (field === "event") event = value;
        else if (field === "data") data.push(value);
      });
      if (data.length) onEvent(event, data.join("\n"));
    });
    return tail;
  }

  var busy = false;

  function setBusy(b) {
    busy = b;
    sendBtn.disabled = b;
    log.setAttribute("aria-busy", b ? "true" : "false");
  }

  function send(text) {
    text = text.trim();
    if (!text || busy) return;
    if (text.length > MAX_CHARS) text = text.slice(0, MAX_CHARS);
    var userMsg = { role: "user", text: text };
    state.messages.push(userMsg);
    save();
    if (state.messages.length === 1) renderAll(); else log.appendChild(renderMessage(userMsg));

    var botMsg = { role: "bot", text: "" };
    var bubble = el("div", { className: "msg bot pending" }, "\u2026");
    log.appendChild(bubble);
    scrollDown();
    setBusy(true);

    var body = { message: text, stream: true };
    if (state.conversationId) body.conversation_id = state.conversationId;
    var streamed = "";
    var finished = false;

    function finish(result, failure) {
      if (finished) return;
      finished = true;
      if (result) {
        state.conversationId = result.conversation_id || state.conversationId;
        botMsg.conversationId = state.conversationId;
        botMsg.text = result.text || streamed;
        botMsg.turnId = result.turn_id || null;
        botMsg.recs = (result.recommendations || []).map(function (r) {
          return { item_id: String(r.item_id), title: String(r.title), price: r.price === null ? null : Number(r.price),
            reason: String(r.reason || "") };
        });
      } else {
        botMsg.role = "note";
        botMsg.text = failure || "Sorry, something went wrong. Please try again.";
      }
      state.messages.push(botMsg);
      save();
      var rendered = renderMessage(botMsg);
      log.replaceChild(rendered, bubble);
      scrollDown();
      setBusy(false);
      if (!panel.hidden) input.focus();
    }

    fetch(cfg.api + "/v1/chat", { method: "POST", headers: headers(), body: JSON.stringify(body),
      credentials: "omit" }).then(function (resp) {
      if (!resp.ok) {
        return resp.json().catch(function () { return null; }).then(function (j) {
          if (resp.status === 404) state.conversationId = null;  // gone or not ours: the next message starts anew
          finish(null, errorText(resp.status, j, resp.headers.get("Retry-After")));
        });
      }
      if (!resp.body || !resp.body.getReader) {
        return resp.text().then(function (all) {
          parseEvents(all + "\n\n", handle);
          if (!finished) finish(null);
        });
      }
      var reader = resp.body.getReader();
      var decoder = new TextDecoder();
      var buffer = "";
      function pump() {
        return reader.read().then(function (chunk) {
          if (chunk.done) {
            parseEvents(buffer + "\n\n", handle);
            if (!finished) finish(null);
            return;
          }
          buffer = parseEvents(buffer + decoder.decode(chunk.value, { stream: true }), handle);
          return pump();
        });
      }
      return pump();
    }).catch(function () {
      finish(null, "I couldn't reach the assistant. Please check your connection and try again.");
    });

    function handle(event, data) {
      var payload;
      try { payload = JSON.parse(data); } catch (e) { return; }
      if (event === "token" && payload && typeof payload.text === "string") {
        if (!streamed) bubble.classList.remove("pending");
        streamed += payload.text;
        bubble.textContent = streamed;
        scrollDown();
      } else if (event === "result") {
        finish(payload);
      } else if (event === "error") {
        finish(null);
      }
    }
  }

  form.addEventListener("submit", function (e) {
    e.preventDefault();
    var text = input.value;
    if (!text.trim() || busy) return;
    input.value = "";
    send(text);
  });
  input.addEventListener("keydown", function (e) {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      if (typeof form.requestSubmit === "function") form.requestSubmit();
      else form.dispatchEvent(new Event("submit", { cancelable: true }));
    }
  });

  // ------------------------------------------------------------------ start

  function mount() {
    document.body.appendChild(host);
    renderAll();
    if (state.open || cfg.startOpen) {
      panel.hidden = false;
      launcher.setAttribute("aria-expanded", "true");
      launcher.setAttribute("aria-label", "Close chat with " + cfg.title);
    }
  }
  if (document.body) mount();
  else document.addEventListener("DOMContentLoaded", mount);

  window.chatrecWidget = { open: open, close: close, send: send };
})();
