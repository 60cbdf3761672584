// The proxy's response cache for routes with cache=on (proxy_config.hh): what a GET or HEAD
// gets from the store (response_cache.hh), what goes upstream instead, and which answers
// are kept, by RFC 9111's rules for a shared cache (cache_control.hh).
//
// - Only GET answers are stored; a HEAD is answered from a stored GET, else passed on.
// - Not stored: statuses other than cache_control.hh's cacheable_status, no-store, private,
//   Set-Cookie, Vary: *, bodies over max_object_bytes (passed through), answers without
//   a freshness lifetime nor a validator (ETag, Last-Modified), and answers to requests
//   with credentials (Authorization, Cookie, or an identity the gateway verified) unless
//   they say public or s-maxage. A private answer is thus never served to anyone else.
// - Vary names request headers whose values select the answer; X-Strata-Caller there is the
//   identity the gateway sends upstream, not what the client sent.
// - A fresh answer is served without the upstream, with Age; a request's If-None-Match that
//   matches its ETag (or If-Modified-Since, without If-None-Match, not before its
//   Last-Modified) gets 304. A stale one (or any, when the request says no-cache or
//   max-age/min-fresh rule it out) is revalidated with If-None-Match / If-Modified-Since:
//   a 304 refreshes it. max-stale is not honoured: stale answers are never served.
// - Requests with no-store, Range, If-Range, If-Match or If-Unmodified-Since bypass the
//   cache; only-if-cached without a fresh answer gets 504.
// - While a miss is in flight, further GETs of the key wait for its answer (at most
//   max_waiters; they are released when it comes, bounded by the route's timeout): served
//   from it when it was stored and their Vary values match, else sent upstream themselves.
// - POST, PUT, DELETE, PATCH (any method but GET, HEAD, OPTIONS, TRACE) drop every stored
//   answer of the path (whatever the query) when sent and again when answered below 400.
// Every GET and HEAD answer says X-Cache: HIT (from the store), MISS (from the upstream, no
// stored answer was usable), STALE (a stored answer was revalidated and replaced by a new
// one), REVALIDATED (a stored answer was confirmed by a 304 and served), BYPASS (the
// request did not use the cache); strata_gateway_cache_requests_total{route,result} counts
// them (hit, miss, stale, revalidated, bypass).
#pragma once

#include "http/router.hh"
#include "metrics/metrics.hh"
#include "response_cache.hh"

#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace strata::gatewayd {

struct CacheMetrics {
    metrics::Family<metrics::Counter>* requests = nullptr; // {route,result}
    metrics::Gauge* bytes = nullptr;
};

// One request of a cached route, as the layer needs it.
struct CacheRequest {
    std::string method;
    CacheKey key;
    http::Headers headers; // the client's, after the route's header rules
    std::string caller;    // X-Strata-Caller as sent upstream
    bool credentials = false;
    std::string route; // the metrics label
    http::Headers own; // what the gateway adds to every answer (X-Request-Id, RateLimit-*)
};

// How the upstream request differs from the client's: its conditional headers removed, and
// the cache's own added (a revalidation).
struct Conditional {
    bool strip = false; // remove If-None-Match and If-Modified-Since
    std::string if_none_match, if_modified_since;
};

class CacheLayer {
public:
    static constexpr std::size_t max_waiters = 256;
    // Sends the request upstream, changed as the Conditional says, the answer going to reply.
    using Fetch = std::function<void(const Conditional&, http::Reply)>;

    CacheLayer(std::size_t max_bytes, std::size_t max_object_bytes, CacheMetrics metrics);
    ~CacheLayer();
    CacheLayer(const CacheLayer&) = delete;
    CacheLayer& operator=(const CacheLayer&) = delete;
    void handle(std::shared_ptr<CacheRequest> request, http::Reply reply, Fetch fetch);

private:
    // Held by the answers' callbacks only weakly: an answer that comes after the layer is
    // gone (the daemon stopping) just goes to its client.
    struct Impl;
    std::shared_ptr<Impl> impl_;
};

} // namespace strata::gatewayd
