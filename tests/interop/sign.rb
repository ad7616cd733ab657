# Signs a billportal sign-in token with Ruby's jwt gem, as the seed product's example does.
# Input on stdin: {"key": "...", "claims": {...}, "kid": "..." (optional)}; output: the token.
require 'json'
require 'jwt'

input = JSON.parse($stdin.read)
headers = input['kid'] ? { kid: input['kid'] } : {}
$stdout.write JWT.encode(input['claims'], input['key'], 'HS256', headers)
