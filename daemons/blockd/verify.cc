#include "verify.hh"

#include "block_routes.hh"
#include "manifest.hh"
#include "media_type.hh"
#include "sha256.hh"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <sys/stat.h>
#include <unistd.h>

namespace strata::blockd {

namespace {

constexpr std::size_t kChunk = 64 * 1024;

std::vector<std::string> hashes_of(const nlohmann::json& arr) {
    if (!arr.is_array() || arr.empty())
        throw http::Error(400, "bad_request", "\"blocks\" must be a non-empty array of hashes");
    std::vector<std::string> out;
    out.reserve(arr.size());
    for (const auto& h : arr) {
        if (!h.is_string() || !is_valid_hash(h.get<std::string>()))
            throw http::Error(400, "invalid_hash", "block hashes are 64 lowercase hex digits");
        out.push_back(h.get<std::string>());
    }
    return out;
}

std::vector<std::string> manifest_blocks(const BlockStore& manifests, const std::string& id) {
    if (!is_valid_hash(id))
        throw http::Error(400, "invalid_id", "content ids are 64 lowercase hex digits");
    auto info = manifests.stat(id);
    if (!info) throw http::Error(404, "not_found", "no content " + id);
    auto m = load_manifest(manifests, *info);
    if (!m) throw http::Error(500, "bad_manifest", "manifest " + id + " is damaged");
    std::vector<std::string> out;
    for (const auto& b : m->blocks)
        out.push_back(b.sha256);
    return out;
}

http::Response verify(const http::Request& req, const BlockStore& blocks, BlockStore& manifests,
                      const VerifyOptions& options) {
    nlohmann::json body = req.json();
    if (!body.is_object()) throw http::Error(400, "bad_request", "expected a JSON object");
    bool has_blocks = body.contains("blocks"), has_id = body.contains("id");
    if (has_blocks == has_id)
        throw http::Error(400, "bad_request", "give exactly one of \"blocks\" or \"id\"");
    std::vector<std::string> hashes;
    if (has_blocks) {
        hashes = hashes_of(body["blocks"]);
    } else {
        if (!body["id"].is_string()) throw http::Error(400, "invalid_id", "\"id\" is a string");
        hashes = manifest_blocks(manifests, body["id"].get<std::string>());
    }
    // {"manifest": true}: also store the manifest of the verified content (metad's commit),
    // with the declared "type" when given, so the file needs no second pass to be served.
    bool store_manifest = false;
    std::string declared_type;
    if (auto it = body.find("manifest"); it != body.end()) {
        if (!it->is_boolean()) throw http::Error(400, "bad_request", "\"manifest\" is a boolean");
        store_manifest = it->get<bool>();
    }
    if (auto it = body.find("type"); it != body.end()) {
        auto t = it->is_string() ? normalize_media_type(it->get<std::string>()) : std::nullopt;
        if (!t) throw http::Error(400, "bad_type", "\"type\" is a media type like image/png");
        declared_type = *t;
    }

    try {
        BlockSpan span(blocks, hashes);
        const std::uint64_t size = span.size();
        if (options.max_bytes != 0 && size > options.max_bytes)
            throw http::Error(413, "payload_too_large",
                              "content of " + std::to_string(size) + " bytes is over the " +
                                  std::to_string(options.max_bytes) + " byte limit");

        // Media type first: a refused type costs one small read, not a full pass.
        std::string head(std::min<std::uint64_t>(size, media_sniff_bytes), '\0');
        std::size_t have = 0;
        while (have < head.size()) {
            std::size_t n = span.read(have, {head.data() + have, head.size() - have});
            if (n == 0) break;
            have += n;
        }
        head.resize(have);
        std::string type = detect_media_type(head);
        if (!media_type_allowed(options.allowed_types, type))
            throw http::Error(415, "unsupported_media_type",
                              "content of type " + type + " is not allowed");

        // Hash pass: whole-content SHA-256, and each block checked against its name.
        Sha256 whole;
        std::string buf(kChunk, '\0');
        for (const auto& part : span.parts()) {
            Sha256 block;
            for (std::uint64_t off = 0; off < part.size;) {
                std::size_t want = std::min<std::uint64_t>(kChunk, part.size - off);
                std::size_t n = span.read(part.offset + off, {buf.data(), want});
                if (n == 0) throw BlockError(ErrorKind::io, "block " + part.hash + " shrank");
                whole.update(buf.data(), n);
                block.update(buf.data(), n);
                off += n;
            }
            if (to_hex(block.finish()) != part.hash)
                throw http::Error(500, "corrupt_block",
                                  "stored block " + part.hash + " does not match its hash");
        }
        std::string sha = to_hex(whole.finish());

        ScanResult scan;
        if (!options.scanner) {
            scan.reason = "no malware scanner configured (signature directory empty or missing)";
        } else {
            scan = options.scanner->scan(
                size, [&span](void* dst, std::size_t count, std::uint64_t offset) -> ssize_t {
                    std::size_t total = 0;
                    auto* out = static_cast<char*>(dst);
                    while (total < count) {
                        std::size_t n = span.read(offset + total, {out + total, count - total});
                        if (n == 0) break;
                        total += n;
                    }
                    return static_cast<ssize_t>(total);
                });
        }
        nlohmann::json js = {{"verdict", to_string(scan.verdict)}};
        if (scan.verdict == Verdict::infected) js["signature"] = scan.signature;
        if (scan.verdict == Verdict::unavailable) js["reason"] = scan.reason;
        nlohmann::json out = {{"size", size}, {"sha256", sha}, {"media_type", type}, {"scan", js}};
        // Infected content gets no manifest: nothing can serve it.
        if (store_manifest && scan.verdict != Verdict::infected) {
            Manifest m;
            m.size = size;
            m.sha256 = sha;
            m.type = declared_type.empty() ? type : declared_type;
            for (const auto& part : span.parts())
                m.blocks.push_back({part.hash, part.size});
            std::string encoded = m.encode();
            std::string id = sha256_hex(encoded);
            manifests.put(id, encoded);
            out["manifest"] = id;
        }
        return http::Response::json(200, out);
    } catch (const BlockError& e) {
        throw to_http_error(e);
    }
}

} // namespace

BlockSpan::BlockSpan(const BlockStore& store, const std::vector<std::string>& hashes)
    : store_(store) {
    nlohmann::json missing = nlohmann::json::array();
    parts_.reserve(hashes.size());
    for (const auto& h : hashes) {
        if (!is_valid_hash(h))
            throw http::Error(400, "invalid_hash", "block hashes are 64 lowercase hex digits");
        auto info = store.stat(h);
        if (!info) {
            missing.push_back(h);
            continue;
        }
        parts_.push_back({h, size_, info->size});
        size_ += info->size;
    }
    if (!missing.empty()) {
        // The error shape has no room for a list: the hashes go in the message.
        throw http::Error(404, "missing_blocks", "missing blocks: " + missing.dump());
    }
}

BlockSpan::~BlockSpan() {
    if (open_fd_ >= 0) close(open_fd_);
}

int BlockSpan::fd_for(std::size_t index) {
    if (open_fd_ >= 0 && open_index_ == index) return open_fd_;
    if (open_fd_ >= 0) close(open_fd_);
    open_fd_ = store_.open_read(parts_[index].hash);
    open_index_ = index;
    if (open_fd_ < 0)
        throw BlockError(ErrorKind::io, "block " + parts_[index].hash + " vanished", ENOENT);
    return open_fd_;
}

std::size_t BlockSpan::read(std::uint64_t offset, std::span<char> buf) {
    if (offset >= size_ || buf.empty()) return 0;
    // The part holding offset: the last one starting at or before it.
    auto it = std::upper_bound(parts_.begin(), parts_.end(), offset,
                               [](std::uint64_t o, const Part& p) { return o < p.offset; });
    std::size_t index = static_cast<std::size_t>(it - parts_.begin()) - 1;
    std::size_t total = 0;
    while (total < buf.size() && index < parts_.size()) {
        const Part& p = parts_[index];
        std::uint64_t in_part = offset + total - p.offset;
        if (in_part >= p.size) {
            ++index;
            continue;
        }
        std::size_t want = std::min<std::uint64_t>(buf.size() - total, p.size - in_part);
        ssize_t n = pread(fd_for(index), buf.data() + total, want, static_cast<off_t>(in_part));
        if (n < 0) {
            if (errno == EINTR) continue;
            throw BlockError(ErrorKind::io, "read block " + p.hash + ": " + std::strerror(errno),
                             errno);
        }
        if (n == 0) throw BlockError(ErrorKind::io, "block " + p.hash + " is shorter than stated");
        total += static_cast<std::size_t>(n);
    }
    return total;
}

bool media_type_allowed(const std::vector<std::string>& allowed, std::string_view type) {
    if (allowed.empty()) return true;
    for (const auto& a : allowed) {
        if (a == type) return true;
        if (a.size() >= 2 && a.ends_with("/*") && type.starts_with(a.substr(0, a.size() - 1)))
            return true;
        if (a == "*/*" || a == "*") return true;
    }
    return false;
}

void add_verify_routes(http::Router& router, const BlockStore& blocks, BlockStore& manifests,
                       VerifyOptions options) {
    auto opts = std::make_shared<const VerifyOptions>(std::move(options));
    // Reads and scans the whole content: off the loop (minutes for a large file).
    router.add_blocking("POST", "/v1/verify", [&blocks, &manifests, opts](http::Request& req) {
        return verify(req, blocks, manifests, *opts);
    });
}

} // namespace strata::blockd
