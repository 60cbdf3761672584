#include "cache_layer.hh"

#include "cache_control.hh"
#include "text.hh"

#include <chrono>
#include <map>
#include <set>

namespace strata::gatewayd {

namespace {

std::int64_t now_ms() {
    using namespace std::chrono;
    return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

// Every field of the name, joined as one (RFC 9110 5.3).
std::optional<std::string> joined(const http::Headers& h, std::string_view name) {
    auto [b, e] = h.equal_range(name);
    if (b == e) return std::nullopt;
    std::string out;
    for (auto it = b; it != e; ++it)
        out += (out.empty() ? "" : ", ") + it->second;
    return out;
}

std::optional<std::string_view> first(const http::Headers& h, std::string_view name) {
    auto it = h.find(name);
    if (it == h.end()) return std::nullopt;
    return std::string_view(it->second);
}

CacheDirectives directives(const http::Headers& h) {
    CacheDirectives cc;
    auto [b, e] = h.equal_range("Cache-Control");
    for (auto it = b; it != e; ++it)
        parse_cache_control(it->second, cc);
    // HTTP/1.0's Pragma: no-cache counts when there is no Cache-Control (RFC 9111 5.4).
    if (b == e)
        if (auto p = joined(h, "Pragma");
            p && text::lower(*p).find("no-cache") != std::string::npos)
            cc.no_cache = true;
    return cc;
}

// The request as Vary sees it: its headers, and the identity the gateway sends upstream.
ResponseCache::RequestHeader vary_view(const CacheRequest& r) {
    return [&r](std::string_view name) -> std::optional<std::string> {
        if (name == "x-strata-caller") return r.caller;
        return joined(r.headers, name);
    };
}

// Weak comparison of an If-None-Match list with an entity tag (RFC 9110 13.1.2).
bool none_match(std::string_view list, std::string_view etag) {
    auto opaque = [](std::string_view t) {
        t = text::trim(t);
        if (t.starts_with("W/")) t.remove_prefix(2);
        return t;
    };
    if (text::trim(list) == "*") return true;
    for (const auto& tag : text::split(list, ','))
        if (opaque(tag) == opaque(etag)) return true;
    return false;
}

// Whether the client's own conditional request is satisfied by this answer (304).
bool not_modified(const http::Headers& request, int status, const http::Headers& answer) {
    if (status != 200) return false;
    if (auto inm = joined(request, "If-None-Match")) {
        auto etag = first(answer, "ETag");
        return etag && none_match(*inm, *etag);
    }
    if (auto ims = first(request, "If-Modified-Since")) {
        auto since = parse_http_date(*ims);
        auto lm = first(answer, "Last-Modified");
        auto modified = lm ? parse_http_date(*lm) : std::nullopt;
        return since && modified && *modified <= *since;
    }
    return false;
}

// The 304 of RFC 9110 15.4.5: the validators and caching fields of the answer, no body.
http::Response not_modified_response(const http::Headers& answer) {
    http::Response r;
    r.status = 304;
    for (const char* name :
         {"Cache-Control", "Content-Location", "ETag", "Expires", "Last-Modified", "Vary"}) {
        auto [b, e] = answer.equal_range(name);
        for (auto it = b; it != e; ++it)
            r.headers.emplace(it->first, it->second);
    }
    return r;
}

// The gateway's own fields: never stored, added again to each answer.
const std::set<std::string, http::CaseLess> not_stored = {
    "x-request-id", "ratelimit-limit", "ratelimit-remaining", "ratelimit-reset",
    "age",          "x-cache",         "content-length",      "date"};

// A 304's fields replace the stored ones of the same names (RFC 9111 3.2).
void merge_headers(http::Headers& stored, const http::Headers& update) {
    std::set<std::string, http::CaseLess> names;
    for (const auto& [k, v] : update)
        if (!not_stored.count(k)) names.insert(k);
    for (const auto& n : names)
        stored.erase(n);
    for (const auto& [k, v] : update)
        if (names.count(k)) stored.emplace(k, v);
}

// The lower-case names of the Vary fields; "*" among them when the answer varies on
// everything.
std::vector<std::string> vary_names(const http::Headers& h) {
    std::vector<std::string> out;
    auto [b, e] = h.equal_range("Vary");
    for (auto it = b; it != e; ++it)
        for (const auto& n : text::split(it->second, ','))
            out.push_back(text::lower(n));
    return out;
}

// Fills lifetime, age and validators from the answer's fields.
void set_freshness(CachedAnswer& a, std::int64_t request_ms, std::int64_t response_ms) {
    const CacheDirectives cc = directives(a.headers);
    FreshnessInput in;
    in.status = a.status;
    in.directives = &cc;
    in.response_time = static_cast<std::time_t>(response_ms / 1000);
    if (auto e = first(a.headers, "Expires")) {
        in.has_expires = true;
        in.expires = parse_http_date(*e);
    }
    if (auto d = first(a.headers, "Date")) in.date = parse_http_date(*d);
    if (auto lm = first(a.headers, "Last-Modified")) {
        in.last_modified = parse_http_date(*lm);
        a.last_modified = std::string(*lm);
    }
    if (auto etag = first(a.headers, "ETag")) a.etag = std::string(*etag);
    a.lifetime_ms = freshness_lifetime(in).lifetime_ms;
    a.no_cache = cc.no_cache;
    std::optional<std::int64_t> age;
    if (auto v = first(a.headers, "Age")) age = parse_delta_seconds(*v);
    a.initial_age_ms = initial_age_ms(age, in.date, request_ms, response_ms);
    a.response_ms = response_ms;
    a.headers.erase("Age");
}

} // namespace

struct CacheLayer::Impl : std::enable_shared_from_this<CacheLayer::Impl> {
    struct Waiter {
        std::shared_ptr<CacheRequest> request;
        http::Reply reply;
        Fetch fetch;
    };

    Impl(std::size_t max_bytes, std::size_t max_object, CacheMetrics m)
        : store(max_bytes, max_object, m.bytes), metrics(m) {}

    ResponseCache store;
    CacheMetrics metrics;
    std::map<CacheKey, std::vector<Waiter>> in_flight; // a miss's key: who waits for it

    void count(const CacheRequest& r, std::string_view result) {
        if (metrics.requests) metrics.requests->with({r.route, result}).inc();
    }

    static void finish(const CacheRequest& r, const http::Reply& reply, http::Response out,
                       const char* x_cache) {
        out.headers.erase("X-Cache");
        out.headers.emplace("X-Cache", x_cache);
        for (const auto& [k, v] : r.own)
            if (!out.headers.count(k)) out.headers.emplace(k, v);
        reply(std::move(out));
    }

    // A stored answer to the client: as stored, with its Age, or a 304 for its own validators.
    void serve(const CacheRequest& r, const http::Reply& reply, const CachedAnswer& a,
               std::int64_t now, const char* x_cache) {
        http::Response out;
        if (not_modified(r.headers, a.status, a.headers)) {
            out = not_modified_response(a.headers);
        } else {
            out.status = a.status;
            out.headers = a.headers;
            out.body = a.body;
        }
        out.headers.emplace("Age", std::to_string(a.age_ms(now) / 1000));
        finish(r, reply, std::move(out), x_cache);
    }

    // Whether the stored answer may be used for this request without the upstream.
    static bool usable(const CacheDirectives& req, const CachedAnswer& a, std::int64_t now) {
        if (req.no_cache || !a.fresh(now)) return false;
        const std::int64_t age = a.age_ms(now);
        if (req.max_age && age >= *req.max_age * 1000) return false;
        if (req.min_fresh && a.lifetime_ms - age < *req.min_fresh * 1000) return false;
        return true;
    }

    // Whether an upstream answer may be stored for this request, as a shared cache.
    bool storable(const CacheRequest& r, const http::Response& a) const {
        if (r.method != "GET" || !cacheable_status(a.status) || a.reader || a.file ||
            a.has_pieces || a.body.size() > store.max_object_bytes() ||
            a.headers.count("Set-Cookie"))
            return false;
        const CacheDirectives cc = directives(a.headers);
        if (cc.no_store || cc.private_) return false;
        if (r.credentials && !cc.public_ && !cc.s_maxage) return false;
        for (const auto& n : vary_names(a.headers))
            if (n == "*") return false;
        return true;
    }

    void lookup(const std::shared_ptr<CacheRequest>& r, const http::Reply& reply,
                const Fetch& fetch, bool may_wait) {
        const CacheDirectives req = directives(r->headers);
        const bool head = r->method == "HEAD";
        if (req.no_store || r->headers.count("Range") || r->headers.count("If-Range") ||
            r->headers.count("If-Match") || r->headers.count("If-Unmodified-Since")) {
            count(*r, "bypass");
            fetch({}, pass(r, reply, "BYPASS"));
            return;
        }
        const std::int64_t now = now_ms();
        auto entry = store.find(r->key, vary_view(*r));
        if (entry && usable(req, *entry, now)) {
            count(*r, "hit");
            serve(*r, reply, *entry, now, "HIT");
            return;
        }
        if (req.only_if_cached) {
            count(*r, "miss");
            finish(*r, reply,
                   http::Response::error(504, "gateway_timeout",
                                         "only-if-cached: no fresh answer is stored"),
                   "MISS");
            return;
        }
        if (head) { // HEAD answers are not stored: a HEAD is passed on
            count(*r, "miss");
            fetch({}, pass(r, reply, "MISS"));
            return;
        }
        if (entry && (!entry->etag.empty() || !entry->last_modified.empty())) {
            Conditional c;
            c.strip = true;
            c.if_none_match = entry->etag;
            if (entry->etag.empty()) c.if_modified_since = entry->last_modified;
            fetch(c, revalidation(r, reply, entry, now));
            return;
        }
        bool leader = false;
        if (auto it = in_flight.find(r->key); it != in_flight.end()) {
            if (may_wait && it->second.size() < max_waiters) {
                it->second.push_back(Waiter{r, reply, fetch});
                return;
            }
        } else {
            in_flight.emplace(r->key, std::vector<Waiter>{});
            leader = true;
        }
        // A miss: the full answer is wanted (to store it); the client's own conditional
        // is then answered here.
        Conditional c;
        c.strip = true;
        fetch(c, miss(r, reply, now, entry ? "STALE" : "MISS", leader));
    }

    // An answer passed through as it is.
    static http::Reply pass(const std::shared_ptr<CacheRequest>& r, const http::Reply& reply,
                            const char* x_cache) {
        return http::Reply(
            [r, reply, x_cache](http::Response a) { finish(*r, reply, std::move(a), x_cache); });
    }

    // The upstream's answer to a miss: stored when it may be, then given to the client; the
    // requests that waited for it (leader) are released.
    http::Reply miss(const std::shared_ptr<CacheRequest>& r, const http::Reply& reply,
                     std::int64_t request_ms, const char* x_cache, bool leader) {
        return http::Reply(
            [weak = weak_from_this(), r, reply, request_ms, x_cache, leader](http::Response a) {
                auto self = weak.lock();
                if (!self) {
                    reply(std::move(a));
                    return;
                }
                self->answered(r, reply, std::move(a), request_ms, x_cache);
                if (leader) self->release(r->key);
            });
    }

    void answered(const std::shared_ptr<CacheRequest>& r, const http::Reply& reply,
                  http::Response a, std::int64_t request_ms, const char* x_cache) {
        const std::int64_t now = now_ms();
        if (storable(*r, a)) {
            auto e = std::make_shared<CachedAnswer>();
            e->status = a.status;
            for (const auto& [k, v] : a.headers)
                if (!not_stored.count(k) || text::lower(k) == "age" || text::lower(k) == "date")
                    e->headers.emplace(k, v);
            e->body = a.body;
            set_freshness(*e, request_ms, now);
            e->headers.erase("Date"); // the server puts its own
            auto view = vary_view(*r);
            for (const auto& n : vary_names(a.headers))
                e->vary.emplace_back(n, view(n));
            // Worth keeping when it can be served fresh or revalidated.
            if ((e->lifetime_ms > 0 && !e->no_cache) || !e->etag.empty() ||
                !e->last_modified.empty())
                store.store(r->key, std::move(e), view);
        }
        count(*r, x_cache == std::string_view("STALE") ? "stale" : "miss");
        if (not_modified(r->headers, a.status, a.headers)) {
            http::Response out = not_modified_response(a.headers);
            for (const char* own :
                 {"X-Request-Id", "RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset"})
                if (auto v = first(a.headers, own)) out.headers.emplace(own, std::string(*v));
            finish(*r, reply, std::move(out), x_cache);
            return;
        }
        finish(*r, reply, std::move(a), x_cache);
    }

    // The upstream's answer to a revalidation of `entry`: a 304 refreshes and serves it.
    http::Reply revalidation(const std::shared_ptr<CacheRequest>& r, const http::Reply& reply,
                             std::shared_ptr<const CachedAnswer> entry, std::int64_t request_ms) {
        return http::Reply([weak = weak_from_this(), r, reply, entry = std::move(entry),
                            request_ms](http::Response a) {
            auto self = weak.lock();
            if (!self) {
                reply(std::move(a));
                return;
            }
            if (a.status != 304) {
                self->answered(r, reply, std::move(a), request_ms, "STALE");
                return;
            }
            const std::int64_t now = now_ms();
            auto renewed = std::make_shared<CachedAnswer>(*entry);
            merge_headers(renewed->headers, a.headers);
            renewed->etag.clear();
            renewed->last_modified.clear();
            set_freshness(*renewed, request_ms, now);
            self->store.store(r->key, renewed, vary_view(*r));
            self->count(*r, "revalidated");
            self->serve(*r, reply, *renewed, now, "REVALIDATED");
        });
    }

    // The miss of `key` was answered: its waiters are served from what was stored, or go
    // upstream themselves (an answer not stored, e.g. private, is never shared).
    void release(const CacheKey& key) {
        auto it = in_flight.find(key);
        if (it == in_flight.end()) return;
        auto waiters = std::move(it->second);
        in_flight.erase(it);
        const std::int64_t now = now_ms();
        for (auto& w : waiters) {
            auto e = store.find(w.request->key, vary_view(*w.request));
            if (e && e->fresh(now)) {
                count(*w.request, "hit");
                serve(*w.request, w.reply, *e, now, "HIT");
            } else {
                lookup(w.request, w.reply, w.fetch, false);
            }
        }
    }
};

CacheLayer::CacheLayer(std::size_t max_bytes, std::size_t max_object_bytes, CacheMetrics metrics)
    : impl_(std::make_shared<Impl>(max_bytes, max_object_bytes, metrics)) {}

CacheLayer::~CacheLayer() = default;

void CacheLayer::handle(std::shared_ptr<CacheRequest> r, http::Reply reply, Fetch fetch) {
    if (r->method == "GET" || r->method == "HEAD") {
        impl_->lookup(r, reply, fetch, true);
        return;
    }
    if (r->method == "OPTIONS" || r->method == "TRACE") {
        fetch({}, std::move(reply));
        return;
    }
    // Unsafe: what is stored for the path is dropped now and once the change is done.
    impl_->store.invalidate(r->key.host, r->key.path);
    fetch({}, http::Reply([weak = std::weak_ptr<Impl>(impl_), r, reply](http::Response a) {
              if (auto self = weak.lock(); self && a.status < 400)
                  self->store.invalidate(r->key.host, r->key.path);
              reply(std::move(a));
          }));
}

} // namespace strata::gatewayd
