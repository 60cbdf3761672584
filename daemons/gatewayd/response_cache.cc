#include "response_cache.hh"

#include <algorithm>

namespace strata::gatewayd {

std::size_t CachedAnswer::bytes() const {
    std::size_t n = 256 + body.size() + etag.size() + last_modified.size();
    for (const auto& [k, v] : headers)
        n += k.size() + v.size() + 64;
    for (const auto& [k, v] : vary)
        n += k.size() + (v ? v->size() : 0) + 32;
    return n;
}

ResponseCache::ResponseCache(std::size_t max_bytes, std::size_t max_object_bytes,
                             metrics::Gauge* bytes)
    : max_bytes_(max_bytes), max_object_(max_object_bytes), gauge_(bytes) {}

ResponseCache::~ResponseCache() {
    account(-static_cast<std::int64_t>(bytes_));
}

void ResponseCache::account(std::int64_t delta) {
    bytes_ = static_cast<std::size_t>(static_cast<std::int64_t>(bytes_) + delta);
    if (gauge_) gauge_->inc(static_cast<double>(delta));
}

bool ResponseCache::matches(const CachedAnswer& a, const RequestHeader& request) {
    return std::all_of(a.vary.begin(), a.vary.end(),
                       [&](const auto& v) { return request(v.first) == v.second; });
}

std::shared_ptr<const CachedAnswer> ResponseCache::find(const CacheKey& key,
                                                        const RequestHeader& request) {
    auto it = index_.find(key);
    if (it == index_.end()) return nullptr;
    for (Iter node : it->second)
        if (matches(*node->answer, request)) {
            lru_.splice(lru_.begin(), lru_, node);
            return node->answer;
        }
    return nullptr;
}

void ResponseCache::erase(Iter node) {
    auto it = index_.find(node->key);
    auto& list = it->second;
    list.erase(std::find(list.begin(), list.end(), node));
    if (list.empty()) index_.erase(it);
    account(-static_cast<std::int64_t>(node->bytes));
    lru_.erase(node);
}

bool ResponseCache::store(const CacheKey& key, std::shared_ptr<const CachedAnswer> answer,
                          const RequestHeader& request) {
    const std::size_t size = answer->bytes() + key.host.size() + key.path.size() + key.query.size();
    if (answer->body.size() > max_object_ || size > max_bytes_) return false;
    if (auto it = index_.find(key); it != index_.end()) {
        // What this request would have found is replaced; past max_variants the oldest goes.
        std::vector<Iter> old;
        for (Iter node : it->second)
            if (matches(*node->answer, request)) old.push_back(node);
        if (old.empty() && it->second.size() >= max_variants) old.push_back(it->second.front());
        for (Iter node : old)
            erase(node);
    }
    while (bytes_ + size > max_bytes_ && !lru_.empty())
        erase(std::prev(lru_.end()));
    lru_.push_front(Node{key, std::move(answer), size});
    index_[key].push_back(lru_.begin());
    account(static_cast<std::int64_t>(size));
    return true;
}

void ResponseCache::invalidate(std::string_view host, std::string_view path) {
    auto it = index_.lower_bound(CacheKey{std::string(host), std::string(path), ""});
    while (it != index_.end() && it->first.host == host && it->first.path == path) {
        auto next = std::next(it);
        auto nodes = it->second; // erase() edits (and finally removes) this list
        for (Iter node : nodes)
            erase(node);
        it = next;
    }
}

} // namespace strata::gatewayd
