// libFuzzer target for metad's search index: the input is a query line and up to 8 doc
// lines, put into a real index in a temporary LMDB environment, queried for two owners,
// then removed, all in one write transaction that is aborted at the end. Checked besides
// "never crash": hits are sorted, allowed, within the limit, and exactly the docs that hold
// every query token as a term prefix; tokens are stable; removing leaves no entries.
//
// Doc line: one control byte (id 1..8 so ids repeat and replace, owner 1..2, folder flag,
// age), then name \t path (a/b/c) \t media type \t tags (x,y).
#include "search_index.hh"
#include "text_fold.hh"

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <limits>
#include <map>
#include <set>
#include <unistd.h>

using namespace strata;
using namespace strata::metad;

namespace {

constexpr std::int64_t now = 1'800'000'000'000;

struct World {
    std::filesystem::path dir;
    std::unique_ptr<lmdb::Env> env;
    std::unique_ptr<SearchIndex> index;
    lmdb::Dbi dbis[3];

    World() {
        char tmpl[] = "/tmp/strata-fuzz-search-XXXXXX";
        dir = mkdtemp(tmpl);
        lmdb::EnvOptions opts;
        opts.map_size = std::size_t{256} << 20; // one input never fills it: no regrowth
        env = std::make_unique<lmdb::Env>(dir / "db", opts);
        index = std::make_unique<SearchIndex>(*env);
        const char* names[] = {"search_terms", "search_docs", "search_stats"};
        for (int i = 0; i < 3; ++i)
            dbis[i] = env->open_dbi(names[i]);
    }
    ~World() {
        index.reset();
        env.reset();
        std::error_code ec;
        std::filesystem::remove_all(dir, ec);
    }
};

std::vector<std::string> split(std::string_view s, char sep, std::size_t max) {
    std::vector<std::string> out;
    while (out.size() + 1 < max) {
        auto at = s.find(sep);
        if (at == s.npos) break;
        out.emplace_back(s.substr(0, at));
        s.remove_prefix(at + 1);
    }
    out.emplace_back(s);
    return out;
}

SearchDoc parse_doc(std::string_view line) {
    SearchDoc d;
    const auto c = line.empty() ? 0u : static_cast<unsigned char>(line[0]);
    if (!line.empty()) line.remove_prefix(1);
    d.id = 1 + (c & 7);
    d.owner = 1 + ((c >> 3) & 1);
    d.folder = c & 0x10;
    const unsigned age = c >> 5;
    d.modified = age == 7   ? std::numeric_limits<std::int64_t>::min()
                 : age == 6 ? std::numeric_limits<std::int64_t>::max()
                            : now - static_cast<std::int64_t>(age) * 40 * 86'400'000;
    auto f = split(line, '\t', 4);
    f.resize(4);
    d.name = f[0];
    d.path = split(f[1], '/', 64);
    d.media_type = f[2];
    d.tags = split(f[3], ',', 64);
    return d;
}

// The terms put() indexes, computed independently: per field at most max_field_tokens.
std::vector<std::string> terms_of(const SearchDoc& d) {
    std::vector<std::string> all;
    auto field = [&](const std::vector<std::string>& parts) {
        std::size_t room = SearchIndex::max_field_tokens;
        for (const auto& p : parts) {
            auto t = search_tokens(p, room);
            room -= t.size();
            all.insert(all.end(), t.begin(), t.end());
        }
    };
    field({d.name});
    field(d.tags);
    field(d.path);
    field({d.media_type});
    return all;
}

bool matches(const std::vector<std::string>& terms, const std::vector<std::string>& q) {
    for (const auto& t : q) {
        bool found = false;
        for (const auto& u : terms)
            found = found || u.starts_with(t);
        if (!found) return false;
    }
    return !q.empty();
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static World w;
    auto lines = split(std::string_view(reinterpret_cast<const char*>(data), size), '\n', 9);
    const std::string q = lines[0];
    std::map<std::uint64_t, SearchDoc> live; // id -> its latest doc

    auto q_tokens = search_tokens(q, SearchIndex::max_query_tokens);
    for (const auto& t : q_tokens)
        if (t.empty() || t.size() > max_token_bytes || search_tokens(t) != std::vector{t}) abort();

    lmdb::Txn txn = w.env->begin_write();
    for (std::size_t i = 1; i < lines.size(); ++i) {
        SearchDoc d = parse_doc(lines[i]);
        w.index->put(txn, d);
        live[d.id] = d;
    }
    const std::uint64_t salt = size % 3;
    auto allowed = [salt](std::uint64_t id) { return (id + salt) % 3 != 0; };
    for (std::uint64_t owner : {1, 2}) {
        auto hits = w.index->query(txn, owner, q, 16, allowed, now);
        std::size_t expected = 0;
        for (const auto& [id, d] : live)
            expected += d.owner == owner && allowed(id) && matches(terms_of(d), q_tokens);
        if (hits.size() != expected) abort();
        std::set<std::uint64_t> seen;
        for (std::size_t i = 0; i < hits.size(); ++i) {
            const auto& h = hits[i];
            auto it = live.find(h.id);
            if (it == live.end() || it->second.owner != owner || !allowed(h.id)) abort();
            if (!matches(terms_of(it->second), q_tokens) || !seen.insert(h.id).second) abort();
            if (!std::isfinite(h.score) || h.score <= 0) abort();
            if (i > 0 && hits[i - 1].score < h.score) abort();
        }
        if (w.index->query(txn, owner, q, 1, allowed, now).size() > 1) abort();
    }
    for (const auto& [id, d] : live)
        w.index->remove(txn, id);
    w.index->remove(txn, 99); // absent
    for (auto dbi : w.dbis)
        if (txn.entries(dbi) != 0) abort();
    txn.abort();
    return 0;
}
