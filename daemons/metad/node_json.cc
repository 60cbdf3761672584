#include "node_json.hh"

#include "store_db.hh"
#include "utf8.hh"

#include <charconv>

namespace strata::metad {

namespace {

void append_uint(std::string& out, std::uint64_t v) {
    char buf[24];
    auto [p, ec] = std::to_chars(buf, buf + sizeof buf, v);
    out.append(buf, p);
}

void append_int(std::string& out, std::int64_t v) {
    char buf[24];
    auto [p, ec] = std::to_chars(buf, buf + sizeof buf, v);
    out.append(buf, p);
}

void append_id(std::string& out, std::uint64_t v) {
    out.push_back('"');
    append_uint(out, v);
    out.push_back('"');
}

} // namespace

void append_json_string(std::string& out, std::string_view s) {
    static constexpr char hex[] = "0123456789abcdef";
    out.push_back('"');
    for (std::size_t i = 0; i < s.size();) {
        // Names, hashes and types are mostly plain ASCII: copy such runs in one append.
        std::size_t run = i;
        while (run < s.size()) {
            auto c = static_cast<unsigned char>(s[run]);
            if (c < 0x20 || c >= 0x80 || c == '"' || c == '\\') break;
            ++run;
        }
        if (run > i) {
            out.append(s.data() + i, run - i);
            i = run;
            if (i == s.size()) break;
        }
        auto c = static_cast<unsigned char>(s[i]);
        if (c == '"' || c == '\\') {
            out.push_back('\\');
            out.push_back(static_cast<char>(c));
            ++i;
        } else if (c < 0x20) {
            out.append("\\u00");
            out.push_back(hex[c >> 4]);
            out.push_back(hex[c & 0xf]);
            ++i;
        } else if (std::size_t n = utf8_sequence_length(s, i)) {
            out.append(s.substr(i, n));
            i += n;
        } else {
            out.append("\xef\xbf\xbd"); // U+FFFD
            ++i;
        }
    }
    out.push_back('"');
}

void append_node_json(std::string& out, const NodeView& n) {
    out.append("{\"id\":");
    append_id(out, n.id);
    out.append(",\"parent\":");
    if (n.parent)
        append_id(out, n.parent);
    else
        out.append("null");
    out.append(",\"name\":");
    append_json_string(out, n.name);
    out.append(n.kind == NodeKind::file ? ",\"kind\":\"file\"" : ",\"kind\":\"folder\"");
    out.append(",\"owner\":");
    append_id(out, n.owner);
    out.append(",\"version\":");
    append_uint(out, n.version);
    out.append(",\"created\":");
    append_int(out, n.created);
    out.append(",\"modified\":");
    append_int(out, n.modified);
    out.append(",\"tags\":[");
    if (n.tag_count) {
        bool first = true;
        for_each_tag(n, [&](std::string_view t) {
            if (!first) out.push_back(',');
            first = false;
            append_json_string(out, t);
        });
    }
    out.push_back(']');
    if (n.creator != n.owner) {
        out.append(",\"creator\":");
        append_id(out, n.creator);
    }
    if (n.trashed) {
        out.append(",\"trashed\":");
        append_int(out, n.trashed);
    }
    if (n.kind == NodeKind::file) {
        out.append(",\"size\":");
        append_uint(out, n.size);
        out.append(",\"type\":");
        append_json_string(out, n.media_type);
        out.append(",\"sha256\":");
        append_json_string(out, n.sha256);
        out.append(",\"manifest\":");
        append_json_string(out, n.manifest);
        out.append(",\"state\":");
        append_json_string(out, n.trashed ? "deleted" : to_string(n.state));
        out.append(",\"renditions\":");
        // Stored as the compact JSON text nlohmann wrote (valid UTF-8): copied as it is.
        if (n.renditions.empty())
            out.append("[]");
        else
            out.append(n.renditions);
        // Progress while processing, the reason once it failed; stale once ready.
        if (!n.processing.empty() && !n.trashed &&
            (n.state == FileState::processing || n.state == FileState::failed)) {
            out.append(",\"processing\":");
            out.append(n.processing);
        }
    }
    out.push_back('}');
}

void append_node_json(std::string& out, const Node& n) {
    std::string tags, renditions;
    append_node_json(out, view_of(n, tags, renditions));
}

} // namespace strata::metad
