// POST /v1/meta/keys/verify: the gateway asks whether an API key is valid before it sends
// the key's identity upstream in X-Strata-Caller (gatewayd's api_key_check.hh). Served only
// to local trusted callers: a unix-socket peer that is root or metad's own user (the
// gateway runs as _strata) and that sends no X-Strata-Caller, so no request the gateway
// proxies (it always sends one) can reach it, whatever its route table publishes.
//
//   Authorization: Bearer sk_...   -> 200 {"user": ID, "key": ID, "scopes": [...]}
//                                     401 invalid_token: unknown, wrong secret, revoked, or
//                                         the user is disabled (one answer for all)
#include "route_util.hh"

#include <unistd.h>

namespace strata::metad {

using namespace route_util;

void add_key_verify_routes(http::Router& router, const std::shared_ptr<Context>& ctx) {
    router.post("/v1/meta/keys/verify", [ctx](http::Request& req) {
        if (!req.peer || (req.peer->uid != 0 && req.peer->uid != ::geteuid()) ||
            req.header("X-Strata-Caller"))
            throw http::Error(403, "forbidden", "for the gateway on metad's socket only");
        auto h = req.header("Authorization");
        if (!h || h->substr(0, 7) != "Bearer ")
            throw http::Error(400, "bad_request", "send the key as Authorization: Bearer sk_...");
        auto key = auth::parse_api_key(h->substr(7));
        auto rec = key ? ctx->store.api_key(key->id) : std::nullopt;
        // Compared even for an unknown id, against a digest no secret has, so the time of
        // the answer does not tell which ids exist.
        static const std::string no_digest(64, '-');
        bool match = auth::digests_equal(rec ? rec->digest : no_digest,
                                         auth::api_key_digest(key ? key->secret : ""));
        auto u = rec ? ctx->store.user(rec->user) : std::nullopt;
        if (!rec || !match || rec->revoked || !u || u->disabled)
            throw http::Error(401, "invalid_token", "the API key is not valid");
        return http::Response::json(
            200, {{"user", id_str(rec->user)}, {"key", id_str(rec->id)}, {"scopes", rec->scopes}});
    });
}

} // namespace strata::metad
