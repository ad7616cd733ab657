// Stripe's card element on the pay and saved-cards pages: the card goes from this frame to
// Stripe, which answers a PaymentMethod id; only that id is posted to billportal.
(function () {
  "use strict";
  var mount = document.getElementById("card-element");
  if (!mount || typeof Stripe === "undefined") { return; }
  var stripe = Stripe(mount.getAttribute("data-publishable-key"));
  var card = stripe.elements().create("card");
  card.mount(mount);
  var form = mount.closest("form");
  var field = document.getElementById("payment_method");
  var errors = document.getElementById("card-errors");
  form.addEventListener("submit", function (event) {
    var saved = form.querySelector('input[name="method"]:checked');
    if (field.value || (saved && saved.value !== "new")) { return; }
    event.preventDefault();
    stripe.createPaymentMethod({ type: "card", card: card }).then(function (result) {
      if (result.error) { errors.textContent = result.error.message; return; }
      field.value = result.paymentMethod.id;
      form.submit();
    });
  });
})();
