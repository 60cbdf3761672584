// Full-text search over file and folder records. The caller keeps the index in step with
// its records by calling put/remove inside the same LMDB write transaction, so the index is
// never ahead of or behind the tree; query runs in any transaction (read is enough).
//
// Terms are the tokens of text_fold.hh. Fields and weights: name 3, tags 2, path (ancestor
// folder names) 1, media type 0.5 ("image/png" gives image and png).
//
// Databases (big-endian u64 ids, so one owner's terms are one key range):
//   search_terms  owner ++ term ++ '\0' ++ id -> ""     postings, in term order per owner
//   search_docs   id -> owner, modified, flags, token count per field, and every distinct
//                 term with its count per field (to score, to verify, to remove)
//   search_stats  owner -> number of docs, summed token counts per field (BM25 averages)
//
// Query: the tokens of q (the first max_query_tokens, repeats dropped), all required (AND).
// A query token t matches each term it is a prefix of (search as you type); an exact match
// counts 1, a prefix-only match 0.5. Score (BM25F, k1 = 1.2, b = 0.75):
//   tf'(t,d)  = sum over fields f of w_f * m(t,d,f) / (1 - b + b * len_f(d) / avglen_f)
//               m(t,d,f) = sum over terms u of d matched by t: count_f(u) * (u == t ? 1 : 0.5)
//   idf(t)    = ln(1 + (N - df(t) + 0.5) / (df(t) + 0.5))
//               N = the owner's docs, df(t) = the owner's docs having a term matched by t
//   score(d)  = recency(d) * sum over t of idf(t) * tf'(t,d) * (k1 + 1) / (tf'(t,d) + k1)
//   recency   = 1 + 0.25 * exp(-age_days / 30), age from modified to now_ms (not below 0)
// Best `limit` by score, ties by newer modified, then smaller id.
//
// Bounded work: each query token scans at most max_postings postings (default 20,000).
// Candidates come from the token with the fewest matching docs and are checked against
// every token through their search_docs record, so a rare token finds its docs however
// common the others are. When every token hits the cap (e.g. "a" alone on a huge index),
// results come from the first max_postings postings in term order: fast, not exhaustive,
// and df(t) is then the count seen (a lower bound). allowed() runs in score order only until
// `limit` docs passed, so an expensive permission check is not paid for every candidate.
#pragma once

#include "lmdb/dbi.hh"
#include "lmdb/env.hh"
#include "lmdb/txn.hh"

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace strata::metad {

struct SearchDoc {
    std::uint64_t id = 0, owner = 0;
    std::string name;
    std::vector<std::string> path; // ancestor folder names, root's child first, parent last
    std::string media_type;
    std::vector<std::string> tags;
    std::int64_t modified = 0; // unix ms
    bool folder = false;
};

struct SearchHit {
    std::uint64_t id = 0;
    double score = 0;
};

class SearchIndex {
public:
    static constexpr std::size_t default_max_postings = 20000;
    static constexpr std::size_t max_query_tokens = 16;
    // Tokens indexed per field of a doc (the rest of a very long tag list is not searchable).
    static constexpr std::size_t max_field_tokens = 1024;

    // Opens (creates) its databases, each in its own write transaction: call it while this
    // thread holds no transaction of env.
    explicit SearchIndex(lmdb::Env& env, std::size_t max_postings = default_max_postings);

    // Adds doc, or replaces the entry of doc.id (also when the owner changed).
    void put(lmdb::Txn& txn, const SearchDoc& doc);
    // Drops id's entry; no-op when absent.
    void remove(lmdb::Txn& txn, std::uint64_t id);
    // owner's docs matching q for which allowed(id) is true (an empty function allows all).
    std::vector<SearchHit> query(lmdb::Txn& txn, std::uint64_t owner, std::string_view q,
                                 std::size_t limit,
                                 const std::function<bool(std::uint64_t)>& allowed,
                                 std::int64_t now_ms) const;

private:
    lmdb::Dbi terms_, docs_, stats_;
    std::size_t max_postings_;
};

} // namespace strata::metad
