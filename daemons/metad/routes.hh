// strata-metad's API on its control socket (HTTP/1.1 + JSON). Ids are decimal strings in
// JSON (64-bit snowflakes do not fit a JavaScript number); requests accept strings or
// numbers.
//
// Who is calling: the gateway passes the identity it verified in "X-Strata-Caller: user=ID;
// session=SID; scopes=A,B" (metad still checks the session is not revoked and the scopes),
// "user=ID; key=KID; scopes=A,B" for an API key (metad checks the key is not revoked), or
// "anonymous" when it verified none; honoured only on the unix socket (whose access is
// limited by its mode), where "user=ID" alone is a trusted local caller; a client may also
// present "Authorization: Bearer <session token>", which metad verifies itself (signature,
// expiry, and its own revocation list), or "Authorization: Bearer sk_..." (an API key).
//
//   POST  /v1/users                 {"name","email","password"} -> 201 user (sign-up)
//   POST  /v1/sessions              {"login","password"} -> 201 {"token","expires","user"}
//   DELETE /v1/sessions/current     revokes the caller's session (Bearer) -> 204
//   GET   /v1/users/me              the caller
//   POST  /v1/folders               {"parent","name"} -> 201 node
//   GET   /v1/nodes/{id}            stat by id (ETag: "VERSION")
//   GET   /v1/stat?path=/a/b        stat by path from the caller's root
//   GET   /v1/nodes/{id}/children?cursor=&limit=   a page, in name order
//   PATCH /v1/nodes/{id}            {"name"?, "parent"?}, If-Match: "VERSION" -> node
//   POST  /v1/keys                  {"name"?, "scopes"?} -> 201 {"id", ..., "token"} (once)
//   GET   /v1/keys                  the caller's keys (no secrets)
//   DELETE /v1/keys/{id}            revokes one -> 204
//   POST  /v1/ids                   {"count": 1..1000} -> {"ids": [...]}
//   GET   /v1/meta/stats            users, sessions, nodes, map size
//   POST  /v1/meta/keys/verify      the gateway's check of an API key (Authorization) ->
//                                   {"user", "key", "scopes"} or 401; local callers only
#pragma once

#include "auth/password.hh"
#include "auth/session_token.hh"
#include "http/router.hh"
#include "meta_store.hh"

#include <memory>
#include <optional>

namespace strata::metad {

struct AuthOptions {
    std::shared_ptr<const auth::SessionSigner> signer; // null: logins answer 503
    std::shared_ptr<const auth::SessionVerifier> verifier;
    std::int64_t session_ttl_seconds = 30 * 86400;
    auth::PasswordCost password_cost = auth::interactive_cost();
};

struct FileOptions;

// files: how commits reach blockd (file_routes.hh); default: commits answer 503.
void add_routes(http::Router& router, MetaStore& store, AuthOptions auth, FileOptions files);
void add_routes(http::Router& router, MetaStore& store, AuthOptions auth);

} // namespace strata::metad
