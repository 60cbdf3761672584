// The gateway's store of cached answers (cache_layer.hh decides what goes in and what comes
// out): size-bounded, in memory, least recently used first out. An answer is found by its
// key (host, path, query of a GET) and the request headers its Vary names: one key holds
// up to max_variants answers, one per combination of those header values.
#pragma once

#include "http/message.hh"
#include "metrics/metrics.hh"

#include <compare>
#include <cstdint>
#include <functional>
#include <list>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace strata::gatewayd {

struct CacheKey {
    std::string host; // the Host header, lower case
    std::string path; // percent-encoded, as the client asked
    std::string query;
    auto operator<=>(const CacheKey&) const = default;
};

// One stored answer. Times are milliseconds of the system clock.
struct CachedAnswer {
    int status = 200;
    http::Headers headers; // as the upstream sent them, without Age and the gateway's own
    std::string body;
    std::int64_t response_ms = 0;    // when it was received (or last revalidated)
    std::int64_t initial_age_ms = 0; // its age then (cache_control.hh initial_age_ms)
    std::int64_t lifetime_ms = 0;    // freshness lifetime
    bool no_cache = false;           // the answer said no-cache: revalidated before every use
    std::string etag, last_modified; // validators, "" when absent
    // The request header values it was chosen for: lower-case names of its Vary, and the
    // value the request had (nullopt: the request had no such field).
    std::vector<std::pair<std::string, std::optional<std::string>>> vary;

    std::int64_t age_ms(std::int64_t now_ms) const {
        return initial_age_ms + std::max<std::int64_t>(0, now_ms - response_ms);
    }
    bool fresh(std::int64_t now_ms) const { return !no_cache && age_ms(now_ms) < lifetime_ms; }
    // What it costs the store: body, headers, key and a fixed overhead.
    std::size_t bytes() const;
};

class ResponseCache {
public:
    // A request header's value (every field of the name joined with ", "), or nullopt.
    using RequestHeader = std::function<std::optional<std::string>(std::string_view lower_name)>;
    static constexpr std::size_t max_variants = 32;

    // bytes, when given, follows what this store holds (added to, so several stores, an old
    // and a new configuration's, may share it).
    ResponseCache(std::size_t max_bytes, std::size_t max_object_bytes,
                  metrics::Gauge* bytes = nullptr);
    ~ResponseCache();
    ResponseCache(const ResponseCache&) = delete;
    ResponseCache& operator=(const ResponseCache&) = delete;

    // The answer for this key whose Vary values match the request's, now most recently used.
    std::shared_ptr<const CachedAnswer> find(const CacheKey& key, const RequestHeader& request);
    // Stores the answer, replacing the key's answers that the same request would find.
    // False (nothing stored) when it is over max_object_bytes or the whole store.
    // Least recently used answers are dropped until it fits.
    bool store(const CacheKey& key, std::shared_ptr<const CachedAnswer> answer,
               const RequestHeader& request);
    // Drops every answer of host and path, whatever the query (an unsafe method there).
    void invalidate(std::string_view host, std::string_view path);

    std::size_t bytes() const { return bytes_; }
    std::size_t entries() const { return lru_.size(); }
    std::size_t max_object_bytes() const { return max_object_; }

private:
    struct Node {
        CacheKey key;
        std::shared_ptr<const CachedAnswer> answer;
        std::size_t bytes = 0;
    };
    using Iter = std::list<Node>::iterator;
    static bool matches(const CachedAnswer& a, const RequestHeader& request);
    void erase(Iter it);
    void account(std::int64_t delta);

    std::size_t max_bytes_, max_object_;
    std::size_t bytes_ = 0;
    metrics::Gauge* gauge_;
    std::list<Node> lru_;                         // most recently used first
    std::map<CacheKey, std::vector<Iter>> index_; // ordered: a path's queries are adjacent
};

} // namespace strata::gatewayd
