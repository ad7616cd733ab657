// Signs a billportal sign-in token with Node's jsonwebtoken, as a company's Node backend would.
// Input on stdin: {"key": "...", "claims": {...}, "kid": "..." (optional)}; output: the token.
"use strict";
const jwt = require("jsonwebtoken");

let input = "";
process.stdin.on("data", (chunk) => { input += chunk; });
process.stdin.on("end", () => {
  const { key, claims, kid } = JSON.parse(input);
  const options = { algorithm: "HS256" };
  if (kid) options.keyid = kid;
  process.stdout.write(jwt.sign(claims, key, options));
});
