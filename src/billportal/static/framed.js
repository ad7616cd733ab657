// Loaded only on portal pages shown in a frame of a site the company allows (docs/embedding.md).
// It tells that page where the frame is and how tall it is. Every message goes to the frame's
// parent, and only with an allowed origin as postMessage's targetOrigin: the browser drops it
// for any other page. The portal works the same without it.
(function () {
  "use strict";
  var script = document.currentScript;
  if (!script || window.parent === window) { return; }
  var allowed = (script.getAttribute("data-origins") || "").split(" ").filter(Boolean);
  var targets = allowed;
  var ancestors = window.location.ancestorOrigins;
  if (ancestors && ancestors.length) {
    // Chromium and WebKit name the parent's origin: post to it alone, if it is allowed.
    targets = allowed.indexOf(ancestors[0]) >= 0 ? [ancestors[0]] : [];
  }

  function post(message) {
    targets.forEach(function (origin) {
      try { window.parent.postMessage(message, origin); } catch (ignored) { /* not that origin */ }
    });
  }

  var signedOut = script.getAttribute("data-signed-out") || "";
  // This page's id: embed.js may ask again (below) and must tell a repeat from a new page.
  var page = Math.random().toString(36).slice(2);
  function tellWhere() {
    post({ type: "billportal:navigated", path: window.location.pathname, title: document.title,
      signedIn: !signedOut, page: page });
    if (signedOut) { post({ type: "billportal:signed_out", reason: signedOut, page: page }); }
  }
  tellWhere();

  var lastHeight = -1;
  function sendHeight() {
    var body = document.body;
    var style = window.getComputedStyle(body);
    var height = Math.ceil(body.getBoundingClientRect().height + parseFloat(style.marginTop || "0") +
      parseFloat(style.marginBottom || "0"));
    if (height !== lastHeight) {
      lastHeight = height;
      post({ type: "billportal:height", height: height });
    }
  }
  sendHeight();
  if (typeof ResizeObserver === "function") {
    new ResizeObserver(sendHeight).observe(document.body);
  } else {
    window.addEventListener("resize", sendHeight);
  }

  // embed.js (often deferred) may start after this page has spoken: it says hello, and hears it all again.
  window.addEventListener("message", function (event) {
    var data = event.data;
    if (event.source !== window.parent || targets.indexOf(event.origin) < 0) { return; }
    if (!data || typeof data !== "object" || data.type !== "billportal:hello") { return; }
    tellWhere();
    lastHeight = -1;
    sendHeight();
  });

  var signOut = document.querySelector("form.signout");
  if (signOut) {
    signOut.addEventListener("submit", function () { post({ type: "billportal:signed_out", reason: "signed_out" }); });
  }
})();
