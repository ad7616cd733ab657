// billportal's optional script for the company's own page that frames the portal (docs/embedding.md).
//
//   <iframe data-billportal src="https://acme.portal.example/login/{token}?redirect_to=invoices"
//           title="Billing" data-billportal-new-tab="https://app.acme.example/billing/open"></iframe>
//   <script src="https://acme.portal.example/static/embed.js" defer></script>
//
// It sizes each iframe[data-billportal] to its page and re-dispatches the portal's messages as DOM
// events on the iframe ("billportal:navigated", "billportal:signed_out", "billportal:height"), whose
// detail is the message. A message counts only if it comes from that iframe's window and from the
// origin of its src. When the browser keeps no cookie in the frame (it blocks all third-party
// cookies), the frame's first page says there is no session: the script then says so beside the
// frame and offers the portal in a new tab (data-billportal-new-tab, else the iframe's src).
// Call preventDefault() on that "billportal:signed_out" event to show your own message instead.
(function () {
  "use strict";
  var MAX_HEIGHT = 100000;

  function originOf(url) {
    try { return new URL(url, window.location.href).origin; } catch (ignored) { return ""; }
  }

  function fallback(frame) {
    if (frame.nextElementSibling && frame.nextElementSibling.hasAttribute("data-billportal-fallback")) { return; }
    var note = document.createElement("p");
    note.setAttribute("data-billportal-fallback", "");
    note.setAttribute("role", "status");
    note.appendChild(document.createTextNode(
      "Your browser does not keep the billing portal's sign-in inside this page. "));
    var link = document.createElement("a");
    link.href = frame.getAttribute("data-billportal-new-tab") || frame.src;
    link.target = "_blank";
    link.rel = "noopener";
    link.textContent = "Open the billing portal in a new tab";
    note.appendChild(link);
    frame.style.display = "none";
    frame.parentNode.insertBefore(note, frame.nextSibling);
  }

  function stateOf(frame) {
    var src = frame.getAttribute("src") || "";
    if (!frame.billportalState || frame.billportalState.src !== src) {
      // A new src (a new sign-in link) starts over.
      frame.billportalState = { src: src, origin: originOf(src), signedIn: false, told: {} };
    }
    return frame.billportalState;
  }

  window.addEventListener("message", function (event) {
    var data = event.data;
    if (!data || typeof data !== "object" || typeof data.type !== "string" || data.type.indexOf("billportal:") !== 0) {
      return;
    }
    var frames = document.querySelectorAll("iframe[data-billportal]");
    for (var i = 0; i < frames.length; i += 1) {
      var frame = frames[i];
      if (event.source !== frame.contentWindow) { continue; }
      var state = stateOf(frame);
      if (event.origin !== state.origin) { return; }
      if (data.type === "billportal:height") {
        if (typeof data.height !== "number" || !(data.height > 0 && data.height < MAX_HEIGHT)) { return; }
        frame.style.height = Math.ceil(data.height) + "px";
      } else if (data.type === "billportal:navigated" || data.type === "billportal:signed_out") {
        // A page says it again when this script says hello: once is enough.
        if (typeof data.page === "string" && state.told[data.type] === data.page) { return; }
        state.told[data.type] = data.page;
        if (data.type === "billportal:navigated") { state.signedIn = state.signedIn || data.signedIn === true; }
      } else {
        return;
      }
      var blocked = data.type === "billportal:signed_out" && data.reason === "no_session" && !state.signedIn;
      var detail = {};
      Object.keys(data).forEach(function (key) { detail[key] = data[key]; });
      if (blocked) { detail.cookiesBlocked = true; }
      var proceed = frame.dispatchEvent(new CustomEvent(data.type, { detail: detail, cancelable: true }));
      if (blocked && proceed) { fallback(frame); }
      return;
    }
  });

  // A frame's page may have loaded, and spoken, before this script ran (it is often deferred):
  // ask each frame's page to say again where it is.
  var present = document.querySelectorAll("iframe[data-billportal]");
  for (var j = 0; j < present.length; j += 1) {
    var origin = stateOf(present[j]).origin;
    if (origin && present[j].contentWindow) {
      try { present[j].contentWindow.postMessage({ type: "billportal:hello" }, origin); } catch (ignored) { /* gone */ }
    }
  }
})();
