// What serving a stored file needs, kept in memory so a hot request makes no filesystem
// lookups: decoded manifests (with their ETag and Last-Modified ready) and open block files.
// Both are immutable by construction (content-addressed), so an entry stays right until GC
// removes the manifest or block, and GC tells the cache (forget()). Bounded LRU of each.
// Thread-safe. The edge-cache role will sit in front of the same serving code.
#pragma once

#include "block_store.hh"
#include "http/message.hh"
#include "manifest.hh"

#include <ctime>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

namespace strata::blockd {

struct CachedContent {
    std::string id;
    Manifest manifest;
    std::time_t modified = 0;  // the manifest's mtime when first served
    std::string etag;          // "\"<sha256 of the content>\""
    std::string last_modified; // HTTP-date of `modified`
    std::string type;          // Content-Type: the manifest's, or application/octet-stream
};

class ContentCache {
public:
    ContentCache(const BlockStore& blocks, const BlockStore& manifests, std::size_t max_manifests,
                 std::size_t max_open_blocks);

    enum class Lookup { found, missing, damaged };
    // The manifest `id` (a valid hash): from memory, else read, decoded and remembered.
    Lookup content(std::string_view id, std::shared_ptr<const CachedContent>& out);
    // An open read-only fd of the block, or null when it is not stored.
    std::shared_ptr<const http::OpenFile> block(std::string_view hash);

    // GC removed this manifest or block.
    void forget(std::string_view hash);

private:
    template <typename V>
    class Lru {
    public:
        explicit Lru(std::size_t cap) : cap_(cap) {}
        V* find(const std::string& k) {
            auto it = map_.find(k);
            if (it == map_.end()) return nullptr;
            order_.splice(order_.begin(), order_, it->second);
            return &it->second->second;
        }
        void put(std::string k, V v) {
            if (cap_ == 0) return;
            if (auto* have = find(k)) {
                *have = std::move(v);
                return;
            }
            order_.emplace_front(k, std::move(v));
            map_.emplace(std::move(k), order_.begin());
            if (map_.size() > cap_) {
                map_.erase(order_.back().first);
                order_.pop_back();
            }
        }
        void erase(const std::string& k) {
            auto it = map_.find(k);
            if (it == map_.end()) return;
            order_.erase(it->second);
            map_.erase(it);
        }

    private:
        std::size_t cap_;
        std::list<std::pair<std::string, V>> order_;
        std::unordered_map<std::string, typename std::list<std::pair<std::string, V>>::iterator>
            map_;
    };

    const BlockStore& blocks_;
    const BlockStore& manifests_;
    mutable std::mutex mutex_;
    Lru<std::shared_ptr<const CachedContent>> contents_;
    Lru<std::shared_ptr<const http::OpenFile>> files_;
};

} // namespace strata::blockd
