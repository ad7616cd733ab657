// Stripe's card element on the pay and saved-cards pages. The card goes from Stripe's element
// to Stripe, which sets it up with the page's SetupIntent (confirmCardSetup, its client secret in
// data-setup-secret) and answers a PaymentMethod id; only that id is posted to billportal.
(function () {
  "use strict";
  var mount = document.getElementById("card-element");
  if (!mount || typeof Stripe === "undefined") { return; }
  var secret = mount.getAttribute("data-setup-secret");
  if (!secret) { return; }  // the page says the card form is not available just now
  var stripe = Stripe(mount.getAttribute("data-publishable-key"));
  var card = stripe.elements().create("card");
  card.mount(mount);
  var form = mount.closest("form");
  var field = document.getElementById("payment_method");
  var errors = document.getElementById("card-errors");
  var busy = false;
  form.addEventListener("submit", function (event) {
    var saved = form.querySelector('input[name="method"]:checked');
    if (field.value || (saved && saved.value !== "new")) { return; }
    event.preventDefault();
    if (busy) { return; }  // a double click sets the card up once
    busy = true;
    errors.textContent = "";
    stripe.confirmCardSetup(secret, { payment_method: { card: card } }).then(function (result) {
      busy = false;
      if (!result || result.error || !result.setupIntent) {
        var message = result && result.error && result.error.message;
        errors.textContent = message || "The card could not be checked. No money was taken.";
        return;
      }
      var method = result.setupIntent.payment_method;
      field.value = typeof method === "string" ? method : method.id;
      form.submit();
    }, function () {
      busy = false;
      errors.textContent = "The card could not be checked just now. No money was taken.";
    });
  });
})();
