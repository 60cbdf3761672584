#include "manifest.hh"

#include "block_store.hh"
#include "media_type.hh"
#include "sha256.hh"

#include <charconv>
#include <unistd.h>

namespace strata::blockd {

std::string Manifest::encode() const {
    std::string out =
        "strata-manifest 1\nsize " + std::to_string(size) + "\nsha256 " + sha256 + "\n";
    if (!type.empty()) out += "type " + type + "\n";
    for (const auto& b : blocks)
        out += "block " + b.sha256 + " " + std::to_string(b.size) + "\n";
    return out;
}

namespace {
bool number(std::string_view s, std::uint64_t& out) {
    if (s.empty() || s.size() > 19) return false;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
    return ec == std::errc() && p == s.data() + s.size();
}
} // namespace

std::optional<Manifest> Manifest::decode(std::string_view text) {
    Manifest m;
    std::size_t line_no = 0;
    std::uint64_t total = 0;
    bool have_size = false;
    while (!text.empty()) {
        auto nl = text.find('\n');
        if (nl == std::string_view::npos) return std::nullopt; // every line ends with \n
        std::string_view line = text.substr(0, nl);
        text.remove_prefix(nl + 1);
        ++line_no;
        if (line_no == 1) {
            if (line != "strata-manifest 1") return std::nullopt;
        } else if (line.rfind("size ", 0) == 0 && line_no == 2) {
            if (!number(line.substr(5), m.size)) return std::nullopt;
            have_size = true;
        } else if (line.rfind("sha256 ", 0) == 0 && line_no == 3) {
            m.sha256 = std::string(line.substr(7));
            if (!is_valid_hash(m.sha256)) return std::nullopt;
        } else if (line.rfind("type ", 0) == 0 && line_no == 4) {
            auto t = normalize_media_type(line.substr(5));
            if (!t || *t != line.substr(5)) return std::nullopt;
            m.type = std::move(*t);
        } else if (line.rfind("block ", 0) == 0 && line_no > 3) {
            auto rest = line.substr(6);
            auto sp = rest.find(' ');
            if (sp == std::string_view::npos) return std::nullopt;
            ManifestBlock b{std::string(rest.substr(0, sp)), 0};
            if (!is_valid_hash(b.sha256) || !number(rest.substr(sp + 1), b.size) || b.size == 0 ||
                b.size > max_block_size)
                return std::nullopt;
            total += b.size;
            if (total > m.size) return std::nullopt;
            m.blocks.push_back(std::move(b));
        } else {
            return std::nullopt;
        }
    }
    if (!have_size || m.sha256.empty() || total != m.size) return std::nullopt;
    return m;
}

std::optional<Manifest> load_manifest(const BlockStore& manifests, const BlockInfo& info) {
    int fd = manifests.open_read(info.hash);
    if (fd < 0) return std::nullopt;
    std::string text(info.size, '\0');
    std::size_t done = 0;
    while (done < text.size()) { // pread may return short counts
        ssize_t got = pread(fd, text.data() + done, text.size() - done, static_cast<off_t>(done));
        if (got <= 0) break;
        done += static_cast<std::size_t>(got);
    }
    close(fd);
    if (done != text.size()) return std::nullopt;
    return Manifest::decode(text);
}

} // namespace strata::blockd
