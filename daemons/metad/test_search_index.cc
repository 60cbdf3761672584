// Unit tests of metad's search: text folding (accents, case, scripts, cuts, bad UTF-8) and
// SearchIndex on a temporary LMDB environment (prefix and AND matching, field ranking and
// recency, replace and remove leaving no postings behind, owners, the allowed filter, limits,
// and the per-token scan cap).
#include "lmdb/cursor.hh"
#include "search_index.hh"
#include "text_fold.hh"

#include <criterion/criterion.h>
#include <filesystem>
#include <unistd.h>

using namespace strata;
using namespace strata::metad;
namespace fs = std::filesystem;
using Ids = std::vector<std::uint64_t>;

static fs::path g_dir;
static void make_dir() {
    char tmpl[] = "/tmp/strata-search-XXXXXX";
    cr_assert(mkdtemp(tmpl));
    g_dir = tmpl;
}
static void remove_dir() {
    std::error_code ec;
    fs::remove_all(g_dir, ec);
}
TestSuite(search, .init = make_dir, .fini = remove_dir);

using Tokens = std::vector<std::string>;

static std::string show(const Tokens& v) {
    std::string s;
    for (const auto& t : v)
        s += "[" + t + "]";
    return s;
}
static std::string show(const Ids& v) {
    std::string s;
    for (auto id : v)
        s += std::to_string(id) + " ";
    return s;
}

Test(search, tokens_fold_case_accents_and_scripts) {
    const std::pair<std::string, Tokens> cases[] = {
        {"IMG_2041.jpg", {"img", "2041", "jpg"}},
        {"Straße", {"strasse"}},
        {"CAFÉ Café café", {"cafe", "cafe", "cafe"}},
        {"Cafe\xcc\x81", {"cafe"}}, // decomposed é
        {"ΟΔΟΣ οδός", {"οδοσ", "οδοσ"}},
        {"МОСКВА-Река", {"москва", "река"}},
        {"한국 사진", {"한국", "사진"}}, // composed again after NFD
        {"İstanbul", {"istanbul"}},
        {"  --  ", {}},
        {"", {}},
    };
    for (const auto& [in, want] : cases) {
        Tokens got = search_tokens(in);
        cr_expect(got == want, "'%s' -> %s, want %s", in.c_str(), show(got).c_str(),
                  show(want).c_str());
    }
    // A spacing vowel sign (Mc) continues its word instead of splitting it.
    cr_expect_eq(search_tokens("हिंदी").size(), 1u);
    cr_expect_eq(fold_term("Crème Brûlée_2"), "creme brulee_2");
    cr_expect_eq(fold_term("Straße"), search_tokens("Straße")[0]);
    cr_expect(search_tokens("a b c d", 2) == (Tokens{"a", "b"}));
    cr_expect(search_tokens("a b", 0).empty());
}

Test(search, tokens_cut_at_code_points) {
    cr_expect_eq(search_tokens(std::string(100, 'a'))[0], std::string(64, 'a'));
    std::string cyr = "a";
    for (int i = 0; i < 40; ++i)
        cyr += "ж"; // 2 bytes each: 64 would split one
    Tokens t = search_tokens(cyr);
    cr_assert_eq(t.size(), 1u);
    cr_expect_eq(t[0].size(), 63u);
    cr_expect_eq(t[0], cyr.substr(0, 63));
}

Test(search, tokens_survive_invalid_utf8) {
    const std::string bad = "ab\xff\xfe"
                            "cd\xc3";
    cr_expect(search_tokens(bad) == (Tokens{"ab", "cd"}), "%s", show(search_tokens(bad)).c_str());
    cr_expect(search_tokens("\xed\xa0\x80x\xc0\xaf") == (Tokens{"x"}));
    std::string noise;
    for (int i = 0; i < 4096; ++i)
        noise.push_back(static_cast<char>((i * 7919) & 0xff));
    // Tokens of any input are themselves stable tokens, so a term can be searched as is.
    for (const auto& tok : search_tokens(noise)) {
        cr_expect(!tok.empty() && tok.size() <= max_token_bytes);
        cr_expect(search_tokens(tok) == Tokens{tok}, "token [%s] is not stable", tok.c_str());
    }
}

namespace {

constexpr std::int64_t now = 1'800'000'000'000;
constexpr std::int64_t day = 86'400'000;

SearchDoc doc(std::uint64_t id, std::string name, std::uint64_t owner = 1) {
    SearchDoc d;
    d.id = id;
    d.owner = owner;
    d.name = std::move(name);
    d.modified = now - 400 * day; // recency ~ 1 for everyone unless a test sets it
    return d;
}

struct World {
    lmdb::Env env;
    SearchIndex index;

    explicit World(std::size_t cap = SearchIndex::default_max_postings)
        : env(g_dir / "db"), index(env, cap) {}

    void put(const SearchDoc& d) {
        env.write([&](lmdb::Txn& t) { index.put(t, d); });
    }
    void remove(std::uint64_t id) {
        env.write([&](lmdb::Txn& t) { index.remove(t, id); });
    }
    std::vector<SearchHit> hits(std::uint64_t owner, std::string_view q, std::size_t limit = 10,
                                const std::function<bool(std::uint64_t)>& allowed = {}) {
        return env.read(
            [&](lmdb::Txn& t) { return index.query(t, owner, q, limit, allowed, now); });
    }
    Ids find(std::string_view q, std::uint64_t owner = 1, std::size_t limit = 10,
             const std::function<bool(std::uint64_t)>& allowed = {}) {
        Ids ids;
        for (const auto& h : hits(owner, q, limit, allowed))
            ids.push_back(h.id);
        return ids;
    }
    // Entries of one of the index's databases (white box: no postings may leak).
    std::size_t entries(const char* dbi) {
        lmdb::Dbi d = env.open_dbi(dbi);
        return env.read([&](lmdb::Txn& t) { return t.entries(d); });
    }
};

} // namespace

#define EXPECT_IDS(got, ...)                                                                       \
    do {                                                                                           \
        Ids g_ = (got), w_ = Ids{__VA_ARGS__};                                                     \
        cr_expect(g_ == w_, "%s: got %s, want %s", #got, show(g_).c_str(), show(w_).c_str());      \
    } while (0)

Test(search, accents_and_case) {
    World w;
    w.put(doc(1, "Café de Flore.jpg"));
    w.put(doc(2, "Straße.png"));
    w.put(doc(3, "ΘΆΛΑΣΣΑ.mov"));
    EXPECT_IDS(w.find("cafe"), 1);
    EXPECT_IDS(w.find("CAFE"), 1);
    EXPECT_IDS(w.find("café"), 1);
    EXPECT_IDS(w.find("strasse"), 2);
    EXPECT_IDS(w.find("STRASSE"), 2);
    EXPECT_IDS(w.find("straße"), 2);
    EXPECT_IDS(w.find("θαλασσα"), 3);
    EXPECT_IDS(w.find("strase"));
}

Test(search, prefix_and_and) {
    World w;
    w.put(doc(1, "Holiday beach sunset.jpg"));
    w.put(doc(2, "beach party.jpg"));
    w.put(doc(3, "holy.txt"));
    EXPECT_IDS(w.find("hol"), 3, 1); // the shorter name wins (BM25 length normalisation)
    EXPECT_IDS(w.find("holi"), 1);
    EXPECT_IDS(w.find("holx"));
    EXPECT_IDS(w.find("beach sun"), 1);
    EXPECT_IDS(w.find("BEACH party"), 2);
    EXPECT_IDS(w.find("beach nothing"));
    EXPECT_IDS(w.find("jpg beach beach"), 2, 1); // repeats count once; "beach party" shorter
    EXPECT_IDS(w.find(""));
    EXPECT_IDS(w.find(" .. _ "));
}

Test(search, exact_beats_prefix) {
    World w;
    w.put(doc(1, "holidays.jpg"));
    w.put(doc(2, "holiday.jpg"));
    EXPECT_IDS(w.find("holiday"), 2, 1);
    EXPECT_IDS(w.find("holidays"), 1);
}

Test(search, fields_rank_name_tags_path) {
    World w;
    SearchDoc in_path = doc(1, "c.jpg");
    in_path.path = {"sunset"};
    SearchDoc in_tag = doc(2, "b.jpg");
    in_tag.tags = {"sunset"};
    SearchDoc in_name = doc(3, "sunset.jpg");
    SearchDoc in_media = doc(4, "d.bin");
    in_media.media_type = "image/sunset";
    for (const auto& d : {in_path, in_tag, in_name, in_media})
        w.put(d);
    EXPECT_IDS(w.find("sunset"), 3, 2, 1, 4);
    auto h = w.hits(1, "sunset");
    for (std::size_t i = 1; i < h.size(); ++i)
        cr_expect_gt(h[i - 1].score, h[i].score);
}

Test(search, media_type_parts) {
    World w;
    SearchDoc d = doc(1, "x");
    d.media_type = "image/png";
    w.put(d);
    EXPECT_IDS(w.find("png"), 1);
    EXPECT_IDS(w.find("image"), 1);
    EXPECT_IDS(w.find("image/png"), 1);
}

Test(search, newer_first_when_equal) {
    World w;
    SearchDoc old = doc(1, "report.pdf"), fresh = doc(2, "report.pdf"),
              older = doc(3, "report.pdf");
    old.modified = now - 60 * day;
    fresh.modified = now - day;
    older.modified = now - 90 * day;
    w.put(old);
    w.put(fresh);
    w.put(older);
    EXPECT_IDS(w.find("report"), 2, 1, 3);
    // Years old: the boost is ~1 for both, the tie goes to the newer, then the smaller id.
    SearchDoc a = doc(4, "tie.txt"), b = doc(5, "tie.txt"), c = doc(6, "tie.txt");
    a.modified = now - 5000 * day;
    b.modified = now - 4000 * day;
    c.modified = now - 5000 * day;
    w.put(c);
    w.put(a);
    w.put(b);
    EXPECT_IDS(w.find("tie"), 5, 4, 6);
    // The boost outweighs a slightly weaker text match: a fresh longer name beats an old one.
    SearchDoc memo = doc(7, "memo.txt"), fresh_memo = doc(8, "memo final.txt");
    fresh_memo.modified = now;
    w.put(memo);
    w.put(fresh_memo);
    EXPECT_IDS(w.find("memo"), 8, 7);
    memo.modified = now; // both fresh: the shorter name wins again
    w.put(memo);
    EXPECT_IDS(w.find("memo"), 7, 8);
}

Test(search, replace_and_remove_leave_nothing) {
    World w;
    SearchDoc d = doc(1, "old name.txt");
    d.tags = {"draft"};
    w.put(d);
    w.put(doc(2, "other.txt"));
    d.name = "new title.txt";
    w.put(d);
    EXPECT_IDS(w.find("old"));
    EXPECT_IDS(w.find("draft"), 1);
    EXPECT_IDS(w.find("new title"), 1);
    // new, title, txt, draft + other, txt
    cr_expect_eq(w.entries("search_terms"), 6u);
    d.owner = 7; // moved to another owner: gone from the first
    w.put(d);
    EXPECT_IDS(w.find("new"));
    EXPECT_IDS(w.find("new", 7), 1);
    w.remove(1);
    w.remove(1); // absent: no-op
    w.remove(99);
    EXPECT_IDS(w.find("new", 7));
    EXPECT_IDS(w.find("other"), 2);
    w.remove(2);
    cr_expect_eq(w.entries("search_terms"), 0u);
    cr_expect_eq(w.entries("search_docs"), 0u);
    cr_expect_eq(w.entries("search_stats"), 0u);
}

Test(search, owners_are_isolated) {
    World w;
    w.put(doc(1, "beach.jpg", 1));
    w.put(doc(2, "beach.jpg", 2));
    w.put(doc(3, "beachball.jpg", 2));
    EXPECT_IDS(w.find("beach", 1), 1);
    EXPECT_IDS(w.find("beach", 2), 2, 3);
    EXPECT_IDS(w.find("beach", 3));
}

Test(search, allowed_then_limit) {
    World w;
    for (std::uint64_t id = 1; id <= 5; ++id) {
        SearchDoc d = doc(id, "photo.jpg");
        d.modified = now - static_cast<std::int64_t>(id) * day; // 1 best
        w.put(d);
    }
    EXPECT_IDS(w.find("photo", 1, 2), 1, 2);
    EXPECT_IDS(w.find("photo", 1, 0));
    EXPECT_IDS(w.find("photo", 1, 100), 1, 2, 3, 4, 5);
    auto odd = [](std::uint64_t id) { return id % 2 == 1; };
    EXPECT_IDS(w.find("photo", 1, 10, odd), 1, 3, 5);
    auto not_best = [](std::uint64_t id) { return id != 1; };
    EXPECT_IDS(w.find("photo", 1, 1, not_best), 2); // filtered before the limit
    int calls = 0;
    w.find("photo", 1, 2, [&](std::uint64_t) { return ++calls, true; });
    cr_expect_eq(calls, 2, "allowed ran %d times for 2 results", calls);
}

Test(search, invalid_utf8) {
    World w;
    w.put(doc(1, "caf\xc3\x28 \xff beach\xed\xa0\x80.jpg"));
    SearchDoc d = doc(2, "\xff\xfe");
    d.tags = {"\xc0\xaf", "ok"};
    d.path = {"\xf4\x90\x80\x80"};
    w.put(d);
    EXPECT_IDS(w.find("\xff\xfe beach"), 1);
    EXPECT_IDS(w.find("caf"), 1);
    EXPECT_IDS(w.find("ok"), 2);
    EXPECT_IDS(w.find("\xc3"));
    w.remove(2);
    EXPECT_IDS(w.find("ok"));
}

Test(search, folder_path_matches) {
    World w;
    SearchDoc beach = doc(10, "Beach");
    beach.folder = true;
    beach.path = {"Photos"};
    SearchDoc img = doc(11, "IMG_2041.jpg");
    img.path = {"Photos", "Beach"};
    SearchDoc elsewhere = doc(12, "IMG_2042.jpg");
    elsewhere.path = {"Photos", "City"};
    for (const auto& d : {beach, img, elsewhere})
        w.put(d);
    EXPECT_IDS(w.find("beach"), 10, 11);
    EXPECT_IDS(w.find("beach img"), 11);
    EXPECT_IDS(w.find("2041"), 11);
    EXPECT_IDS(w.find("photos city"), 12);
}

Test(search, scan_cap_bounds_work_but_rare_tokens_find) {
    World w(5);
    for (std::uint64_t id = 1; id <= 20; ++id)
        w.put(doc(id, "common.txt"));
    w.put(doc(21, "common zebra.txt"));
    w.put(doc(22, "zebra.txt"));
    cr_expect_leq(w.find("common", 1, 100).size(), 5u);
    // zebra's docs are the candidates; "common" (cut short) is checked on their records.
    EXPECT_IDS(w.find("common zebra"), 21);
    EXPECT_IDS(w.find("zebra common"), 21);
    EXPECT_IDS(w.find("zebra"), 22, 21);
}
