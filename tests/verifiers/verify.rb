# Verify a token the way a Ruby backend using the `jwt` gem would.
# stdin: {"token", "secret", "alg": "HS256"|"HS512", "kind": "reqio"|"reditus", "audience"?}
# stdout: one JSON line {"ok": true, "claims", "header"} or {"ok": false, "error"};
# exit 0 accepted, 1 rejected.
require "json"
require "jwt"

req = JSON.parse($stdin.read)
begin
  if req["kind"] == "reditus"
    claims, header = JWT.decode(req["token"], req["secret"], true,
                                algorithm: "HS512", verify_iat: true,
                                required_claims: %w[ProductId UserId iat])
    id = claims["UserId"]
  else
    claims, header = JWT.decode(req["token"], req["secret"], true,
                                algorithm: req["alg"], verify_aud: true, aud: req["audience"],
                                verify_iat: true, required_claims: %w[sub exp iat])
    id = claims["sub"]
  end
  # ruby-jwt compares sub with to_s, so it would take an integer; a Rails app would not.
  raise JWT::DecodeError, "user id is a #{id.class}, not a String" unless id.is_a?(String)
  puts JSON.generate({ ok: true, claims: claims, header: header })
  exit 0
rescue JWT::DecodeError => e
  puts JSON.generate({ ok: false, error: "#{e.class}: #{e.message}" })
  exit 1
end
