#include "content_cache.hh"

#include "http_range.hh"

#include <chrono>

namespace strata::blockd {

ContentCache::ContentCache(const BlockStore& blocks, const BlockStore& manifests,
                           std::size_t max_manifests, std::size_t max_open_blocks)
    : blocks_(blocks), manifests_(manifests), contents_(max_manifests), files_(max_open_blocks) {}

ContentCache::Lookup ContentCache::content(std::string_view id,
                                           std::shared_ptr<const CachedContent>& out) {
    std::string key(id);
    {
        std::lock_guard lock(mutex_);
        if (auto* hit = contents_.find(key)) {
            out = *hit;
            return Lookup::found;
        }
    }
    // Read outside the lock: two threads missing at once both load; the result is the same.
    auto info = manifests_.stat(id);
    if (!info) return Lookup::missing;
    auto manifest = load_manifest(manifests_, *info);
    if (!manifest) return Lookup::damaged;
    auto c = std::make_shared<CachedContent>();
    c->id = key;
    c->manifest = std::move(*manifest);
    c->modified = std::chrono::system_clock::to_time_t(info->mtime);
    c->etag = "\"" + c->manifest.sha256 + "\"";
    c->last_modified = format_http_date(c->modified);
    c->type = c->manifest.type.empty() ? "application/octet-stream" : c->manifest.type;
    out = c;
    std::lock_guard lock(mutex_);
    contents_.put(std::move(key), std::move(c));
    return Lookup::found;
}

std::shared_ptr<const http::OpenFile> ContentCache::block(std::string_view hash) {
    std::string key(hash);
    {
        std::lock_guard lock(mutex_);
        if (auto* hit = files_.find(key)) return *hit;
    }
    int fd = blocks_.open_read(hash);
    if (fd < 0) return nullptr;
    auto f = std::make_shared<const http::OpenFile>(fd);
    std::lock_guard lock(mutex_);
    files_.put(std::move(key), f);
    return f;
}

void ContentCache::forget(std::string_view hash) {
    std::string key(hash);
    std::lock_guard lock(mutex_);
    contents_.erase(key);
    files_.erase(key);
}

} // namespace strata::blockd
