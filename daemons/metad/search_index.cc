#include "search_index.hh"

#include "keys.hh"
#include "lmdb/cursor.hh"
#include "text_fold.hh"

#include <algorithm>
#include <array>
#include <cmath>
#include <map>
#include <optional>

namespace strata::metad {

namespace {

enum Field : std::size_t { f_name, f_tags, f_path, f_media, n_fields };
constexpr std::array<double, n_fields> weight = {3, 2, 1, 0.5};
constexpr double k1 = 1.2, b = 0.75, prefix_factor = 0.5;
constexpr std::uint8_t record_version = 1;

using Counts = std::array<std::uint32_t, n_fields>;

template <class Text>
struct Term {
    Text text;
    std::array<std::uint8_t, n_fields> count{}; // occurrences per field, capped at 255
};

// A search_docs value, decoded.
template <class Text>
struct Record {
    std::uint64_t owner = 0;
    std::int64_t modified = 0;
    bool folder = false;
    Counts length{};               // tokens per field
    std::vector<Term<Text>> terms; // distinct, in byte order
};
// Owned strings: put/remove write while holding it, which would move the map under views.
using DocRecord = Record<std::string>;
// Views into the map: query only reads, and decodes thousands of records without allocating.
using RecordView = Record<std::string_view>;

struct Stats {
    std::uint64_t docs = 0;
    std::array<std::uint64_t, n_fields> length{};
};

void put_be(std::string& out, std::uint64_t v, int bytes) {
    for (int i = bytes - 1; i >= 0; --i)
        out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

// Reads big-endian fields off a value; any overrun marks it bad instead of reading past it.
struct Reader {
    std::string_view s;
    bool bad = false;
    std::uint64_t be(std::size_t bytes) {
        if (s.size() < bytes) {
            bad = true;
            return 0;
        }
        std::uint64_t v = 0;
        for (std::size_t i = 0; i < bytes; ++i)
            v = (v << 8) | static_cast<unsigned char>(s[i]);
        s.remove_prefix(bytes);
        return v;
    }
    std::string_view bytes(std::size_t n) {
        if (s.size() < n) {
            bad = true;
            return {};
        }
        auto v = s.substr(0, n);
        s.remove_prefix(n);
        return v;
    }
};

std::string encode(const DocRecord& r) {
    std::string out;
    out.push_back(static_cast<char>(record_version));
    put_be(out, r.owner, 8);
    put_be(out, static_cast<std::uint64_t>(r.modified), 8);
    out.push_back(r.folder ? 1 : 0);
    for (auto n : r.length)
        put_be(out, n, 2);
    put_be(out, r.terms.size(), 2);
    for (const auto& t : r.terms) {
        out.push_back(static_cast<char>(t.text.size())); // <= max_token_bytes
        out += t.text;
        for (auto c : t.count)
            out.push_back(static_cast<char>(c));
    }
    return out;
}

// Fills d (reusing its term storage); false if v is not a valid record.
template <class Text>
bool decode(std::string_view v, Record<Text>& d) {
    Reader r{v};
    d.terms.clear();
    if (r.be(1) != record_version) return false;
    d.owner = r.be(8);
    d.modified = static_cast<std::int64_t>(r.be(8));
    d.folder = r.be(1) & 1;
    for (auto& n : d.length)
        n = static_cast<std::uint32_t>(r.be(2));
    const std::size_t terms = r.be(2);
    for (std::size_t i = 0; i < terms && !r.bad; ++i) {
        Term<Text> t;
        t.text = r.bytes(r.be(1));
        for (auto& c : t.count)
            c = static_cast<std::uint8_t>(r.be(1));
        d.terms.push_back(std::move(t));
    }
    return !r.bad;
}

std::optional<DocRecord> load_doc(const lmdb::Txn& txn, lmdb::Dbi dbi, std::string_view key) {
    DocRecord d;
    auto v = txn.get(dbi, key);
    if (!v || !decode(*v, d)) return std::nullopt;
    return d;
}

DocRecord make_record(const SearchDoc& doc) {
    DocRecord r;
    r.owner = doc.owner;
    r.modified = doc.modified;
    r.folder = doc.folder;
    std::map<std::string, std::array<std::uint8_t, n_fields>> counts;
    auto add = [&](Field f, std::string_view text) {
        const std::size_t room = SearchIndex::max_field_tokens - r.length[f];
        if (room == 0) return;
        for (std::string& t : search_tokens(text, room)) {
            auto& c = counts[std::move(t)][f];
            if (c < 255) ++c;
            ++r.length[f];
        }
    };
    add(f_name, doc.name);
    for (const auto& t : doc.tags)
        add(f_tags, t);
    for (const auto& p : doc.path)
        add(f_path, p);
    add(f_media, doc.media_type);
    for (auto& [text, c] : counts)
        r.terms.push_back({text, c});
    return r;
}

std::string posting_key(std::uint64_t owner, std::string_view term, std::uint64_t id) {
    std::string k = be64(owner);
    k += term;
    k.push_back('\0'); // tokens never hold NUL, so this ends the term
    k += be64(id);
    return k;
}

Stats load_stats(const lmdb::Txn& txn, lmdb::Dbi dbi, std::uint64_t owner) {
    Stats s;
    auto v = txn.get(dbi, be64(owner));
    if (!v || v->size() != 8 * (1 + n_fields)) return s;
    Reader r{*v};
    s.docs = r.be(8);
    for (auto& n : s.length)
        n = r.be(8);
    return s;
}

// Adds (sign 1) or takes away (sign -1) one record's share of its owner's stats.
void adjust_stats(lmdb::Txn& txn, lmdb::Dbi dbi, const DocRecord& rec, int sign) {
    Stats s = load_stats(txn, dbi, rec.owner);
    auto apply = [sign](std::uint64_t& total, std::uint64_t n) {
        total = sign > 0 ? total + n : total - std::min(total, n);
    };
    apply(s.docs, 1);
    for (std::size_t f = 0; f < n_fields; ++f)
        apply(s.length[f], rec.length[f]);
    if (s.docs == 0) {
        txn.del(dbi, be64(rec.owner));
        return;
    }
    std::string v;
    put_be(v, s.docs, 8);
    for (auto n : s.length)
        put_be(v, n, 8);
    txn.put(dbi, be64(rec.owner), v);
}

} // namespace

SearchIndex::SearchIndex(lmdb::Env& env, std::size_t max_postings)
    : terms_(env.open_dbi("search_terms")), docs_(env.open_dbi("search_docs")),
      stats_(env.open_dbi("search_stats")), max_postings_(std::max<std::size_t>(max_postings, 1)) {}

void SearchIndex::put(lmdb::Txn& txn, const SearchDoc& doc) {
    const std::string key = be64(doc.id);
    std::optional<DocRecord> old = load_doc(txn, docs_, key);
    if (old && old->owner != doc.owner) {
        remove(txn, doc.id);
        old.reset();
    }
    const DocRecord rec = make_record(doc);
    // Only the postings that differ are written: most updates (a new modified time, a tag)
    // keep most terms.
    const std::vector<Term<std::string>> none;
    const auto& before = old ? old->terms : none;
    std::size_t i = 0, j = 0;
    while (i < before.size() || j < rec.terms.size()) {
        const int c = i == before.size()      ? 1
                      : j == rec.terms.size() ? -1
                                              : before[i].text.compare(rec.terms[j].text);
        if (c < 0) txn.del(terms_, posting_key(doc.owner, before[i++].text, doc.id));
        if (c > 0) txn.put(terms_, posting_key(doc.owner, rec.terms[j++].text, doc.id), "");
        if (c == 0) ++i, ++j;
    }
    if (old) adjust_stats(txn, stats_, *old, -1);
    adjust_stats(txn, stats_, rec, 1);
    txn.put(docs_, key, encode(rec));
}

void SearchIndex::remove(lmdb::Txn& txn, std::uint64_t id) {
    const std::string key = be64(id);
    // A record that does not decode leaves postings behind; query skips them (no record).
    if (auto rec = load_doc(txn, docs_, key)) {
        for (const auto& t : rec->terms)
            txn.del(terms_, posting_key(rec->owner, t.text, id));
        adjust_stats(txn, stats_, *rec, -1);
    }
    txn.del(docs_, key); // false when absent: then remove is a no-op
}

std::vector<SearchHit> SearchIndex::query(lmdb::Txn& txn, std::uint64_t owner, std::string_view q,
                                          std::size_t limit,
                                          const std::function<bool(std::uint64_t)>& allowed,
                                          std::int64_t now_ms) const {
    if (limit == 0) return {};
    std::vector<std::string> tokens;
    for (std::string& t : search_tokens(q, max_query_tokens))
        if (std::find(tokens.begin(), tokens.end(), t) == tokens.end())
            tokens.push_back(std::move(t));
    if (tokens.empty()) return {};
    const Stats stats = load_stats(txn, stats_, owner);
    if (stats.docs == 0) return {};

    // Docs having a term that starts with each token, from at most max_postings_ postings.
    struct Scan {
        std::vector<std::uint64_t> docs; // sorted, distinct
        bool complete = true;
    };
    std::vector<Scan> scans(tokens.size());
    lmdb::Cursor cur(txn, terms_);
    const std::string own = be64(owner);
    for (std::size_t i = 0; i < tokens.size(); ++i) {
        std::size_t seen = 0;
        for (auto [k, v] : cur.prefix(own + tokens[i])) {
            if (seen++ == max_postings_) {
                scans[i].complete = false;
                break;
            }
            if (k.size() >= own.size() + tokens[i].size() + 9 && k[k.size() - 9] == '\0')
                scans[i].docs.push_back(from_be64(k.substr(k.size() - 8)));
        }
        auto& d = scans[i].docs;
        std::sort(d.begin(), d.end());
        d.erase(std::unique(d.begin(), d.end()), d.end());
    }
    std::size_t driver = 0;
    for (std::size_t i = 1; i < scans.size(); ++i)
        if (scans[i].docs.size() < scans[driver].docs.size()) driver = i;

    const double n_docs = static_cast<double>(stats.docs);
    std::vector<double> idf(tokens.size());
    for (std::size_t i = 0; i < tokens.size(); ++i) {
        const double df = static_cast<double>(scans[i].docs.size());
        idf[i] = std::log(1 + (std::max(n_docs, df) - df + 0.5) / (df + 0.5));
    }
    std::array<double, n_fields> avglen{};
    for (std::size_t f = 0; f < n_fields; ++f)
        avglen[f] = static_cast<double>(stats.length[f]) / n_docs;

    struct Ranked {
        double score;
        std::int64_t modified;
        std::uint64_t id;
    };
    std::vector<Ranked> ranked;
    RecordView rec;
    for (std::uint64_t id : scans[driver].docs) {
        bool maybe = true;
        for (std::size_t i = 0; i < scans.size() && maybe; ++i)
            if (i != driver && scans[i].complete)
                maybe = std::binary_search(scans[i].docs.begin(), scans[i].docs.end(), id);
        if (!maybe) continue;
        auto v = txn.get(docs_, be64(id));
        if (!v || !decode(*v, rec) || rec.owner != owner) continue;
        // The record decides the match: capped scans and stale postings only propose.
        double sum = 0;
        bool all = true;
        for (std::size_t i = 0; i < tokens.size() && all; ++i) {
            const std::string& t = tokens[i];
            std::array<double, n_fields> m{};
            auto it =
                std::lower_bound(rec.terms.begin(), rec.terms.end(), t,
                                 [](const auto& u, std::string_view s) { return u.text < s; });
            for (; it != rec.terms.end() && it->text.starts_with(t); ++it) {
                const double exact = it->text.size() == t.size() ? 1.0 : prefix_factor;
                for (std::size_t f = 0; f < n_fields; ++f)
                    m[f] += it->count[f] * exact;
            }
            double tf = 0;
            for (std::size_t f = 0; f < n_fields; ++f) {
                if (m[f] == 0) continue;
                const double rel = avglen[f] > 0 ? rec.length[f] / avglen[f] : 0;
                tf += weight[f] * m[f] / (1 - b + b * rel);
            }
            all = tf > 0;
            sum += idf[i] * tf * (k1 + 1) / (tf + k1);
        }
        if (!all) continue;
        // In double: any two int64 times subtract without overflow.
        const double age_days =
            std::max(0.0, static_cast<double>(now_ms) - static_cast<double>(rec.modified)) /
            86'400'000.0;
        ranked.push_back({sum * (1 + 0.25 * std::exp(-age_days / 30)), rec.modified, id});
    }
    std::sort(ranked.begin(), ranked.end(), [](const Ranked& x, const Ranked& y) {
        if (x.score != y.score) return x.score > y.score;
        if (x.modified != y.modified) return x.modified > y.modified;
        return x.id < y.id;
    });
    std::vector<SearchHit> hits;
    for (const Ranked& r : ranked) {
        if (hits.size() == limit) break;
        if (!allowed || allowed(r.id)) hits.push_back({r.id, r.score});
    }
    return hits;
}

} // namespace strata::metad
