// Unit tests of MetaStore on a temporary LMDB environment: names, users, the folder tree
// (uniqueness, paging, moves without cycles, versions) and ids across reopening.
#include "lmdb/cursor.hh"
#include "meta_store.hh"
#include "node_json.hh"
#include "store_db.hh"

#include <criterion/criterion.h>
#include <filesystem>
#include <set>
#include <unistd.h>

using namespace strata::metad;
namespace fs = std::filesystem;

static fs::path g_dir;
static void make_dir() {
    char tmpl[] = "/tmp/strata-metastore-XXXXXX";
    cr_assert(mkdtemp(tmpl));
    g_dir = tmpl;
}
static void remove_dir() {
    std::error_code ec;
    fs::remove_all(g_dir, ec);
}
TestSuite(meta_store, .init = make_dir, .fini = remove_dir);

static int status_of(const std::function<void()>& fn) {
    try {
        fn();
    } catch (const StoreError& e) {
        return e.status();
    }
    return 0;
}

Test(meta_store, names) {
    for (std::string ok : std::initializer_list<std::string>{
             "a", "Photos 2026", std::string(255, 'x'), "résumé.pdf", "...x"})
        cr_expect_eq(status_of([&] { check_name(ok); }), 0, "'%s' is a name", ok.c_str());
    for (std::string bad :
         {std::string(), std::string("/"), std::string("a/b"), std::string("."), std::string(".."),
          std::string("a\x01"), std::string(256, 'x'), std::string("\xc3"), std::string("\xc0\xaf"),
          std::string("\xe0\x80\xaf"), std::string("\xed\xa0\x80"), std::string("\xf4\x90\x80\x80"),
          std::string("\xf0\x82\x82\xac")})
        cr_expect_eq(status_of([&] { check_name(bad); }), 400);
    cr_expect_eq(fold_name("PhOtOs"), "photos");
}

Test(meta_store, users_unique_and_found) {
    MetaStore s(g_dir / "db", 1);
    User a = s.create_user("Alice", "Alice@Example.org", "hash");
    cr_expect(a.name == "alice" && a.email == "alice@example.org" && a.root != 0);
    cr_expect_eq(status_of([&] { s.create_user("ALICE", "other@example.org", "h"); }), 409);
    cr_expect_eq(status_of([&] { s.create_user("bob", "alice@EXAMPLE.org", "h"); }), 409);
    cr_expect_eq(status_of([&] { s.create_user("b", "b@example.org", "h"); }), 400);
    cr_expect_eq(status_of([&] { s.create_user("bob", "not-an-email", "h"); }), 400);
    cr_expect(s.user_by_login("ALICE")->id == a.id);
    cr_expect(s.user_by_login("alice@example.org")->id == a.id);
    cr_expect(!s.user_by_login("nobody"));
    cr_expect_eq(s.stat(a.id, a.root).kind, NodeKind::folder);
}

Test(meta_store, tree_operations) {
    MetaStore s(g_dir / "db", 1);
    User a = s.create_user("alice", "a@example.org", "h");
    User b = s.create_user("bob", "b@example.org", "h");
    Node photos = s.create_folder(a.id, a.root, "Photos");
    cr_expect_eq(status_of([&] { s.create_folder(a.id, a.root, "photos"); }), 409);
    cr_expect_eq(status_of([&] { s.create_folder(b.id, a.root, "mine"); }), 404,
                 "bob cannot write into alice's root");
    cr_expect_eq(status_of([&] { s.stat(b.id, photos.id); }), 404);
    Node y2026 = s.create_folder(a.id, photos.id, "2026");
    Node trip = s.create_folder(a.id, y2026.id, "Trip");
    cr_expect_eq(s.stat_path(a.id, "/PHOTOS/2026/trip").id, trip.id);
    cr_expect_eq(status_of([&] { s.stat_path(b.id, "/Photos"); }), 404);
    // No cycles: not into itself, not below itself.
    cr_expect_eq(status_of([&] { s.update(a.id, photos.id, {}, photos.id, 0); }), 400);
    cr_expect_eq(status_of([&] { s.update(a.id, photos.id, {}, trip.id, 0); }), 400);
    cr_expect_eq(status_of([&] { s.update(a.id, a.root, std::string("x"), {}, 0); }), 400);
    // Move and rename, versions.
    Node moved = s.update(a.id, trip.id, std::string("Holiday"), a.root, 0);
    cr_expect(moved.parent == a.root && moved.name == "Holiday" && moved.version == 2);
    cr_expect_eq(status_of([&] { s.update(a.id, trip.id, std::string("x"), {}, 1); }), 412);
    cr_expect_eq(s.update(a.id, trip.id, std::string("HOLIDAY"), {}, 2).version, 3u,
                 "a case-only rename is allowed");
    cr_expect_eq(status_of([&] { s.update(a.id, trip.id, std::string("photos"), {}, 0); }), 409);
    cr_expect_eq(s.stat_path(a.id, "/holiday").id, trip.id);
    cr_expect_eq(status_of([&] { s.stat_path(a.id, "/Photos/2026/Trip"); }), 404,
                 "the old path is gone");
}

Test(meta_store, paging_in_name_order) {
    MetaStore s(g_dir / "db", 1);
    User a = s.create_user("alice", "a@example.org", "h");
    std::set<std::string> want;
    for (int i = 0; i < 57; ++i) {
        std::string name = "f" + std::to_string(i * 7919 % 1000);
        s.create_folder(a.id, a.root, name);
        want.insert(name);
    }
    std::vector<std::string> got;
    std::string cursor;
    int pages = 0;
    do {
        auto page = s.list(a.id, a.root, cursor, 10);
        for (const auto& n : page.nodes)
            got.push_back(n.name);
        cursor = page.next_cursor;
        ++pages;
    } while (!cursor.empty() && pages < 20);
    cr_expect_eq(pages, 6);
    cr_expect(std::vector<std::string>(want.begin(), want.end()) == got,
              "every child once, in name order");
}

Test(meta_store, ids_increase_across_reopen) {
    std::uint64_t last;
    {
        MetaStore s(g_dir / "db", 3);
        auto ids = s.reserve_ids(100);
        for (std::size_t i = 1; i < ids.size(); ++i)
            cr_assert_gt(ids[i], ids[i - 1]);
        last = ids.back();
    }
    MetaStore again(g_dir / "db", 3);
    cr_expect_gt(again.next_id(), last);
}

static FileCommit file_in(std::uint64_t parent, std::string name) {
    FileCommit f;
    f.parent = parent;
    f.name = std::move(name);
    f.size = 3;
    f.media_type = "text/plain";
    f.sha256 = std::string(64, 'a');
    f.manifest = std::string(64, 'b');
    return f;
}

static Role role_on(MetaStore& s, Principal who, std::uint64_t id) {
    Role r = Role::none;
    try {
        s.stat(who, id, &r);
    } catch (const StoreError&) {
        return Role::none;
    }
    return r;
}

Test(meta_store, shares_are_inherited_and_end) {
    MetaStore s(g_dir / "db", 1);
    User a = s.create_user("alice", "a@example.org", "h");
    User b = s.create_user("bob", "b@example.org", "h");
    User c = s.create_user("carol", "c@example.org", "h");
    Node shared = s.create_folder(a.id, a.root, "Shared");
    Node deep = s.create_folder(a.id, shared.id, "Deep");
    Node f = s.commit_file(a.id, file_in(deep.id, "notes.txt"));
    Node outside = s.commit_file(a.id, file_in(a.root, "private.txt"));
    s.share(a.id, shared.id, b.id, Role::read);
    cr_expect_eq(role_on(s, {b.id}, f.id), Role::read, "a share covers what is below it");
    cr_expect_eq(role_on(s, {b.id}, outside.id), Role::none);
    cr_expect_eq(role_on(s, {c.id}, f.id), Role::none);
    cr_expect_eq(status_of([&] { s.create_folder(b.id, deep.id, "x"); }), 403,
                 "read-only: visible, so 403");
    s.share(a.id, deep.id, b.id, Role::write);
    cr_expect_eq(role_on(s, {b.id}, f.id), Role::write, "the strongest share on the way wins");
    Node by_bob = s.create_folder(b.id, deep.id, "From Bob");
    cr_expect(by_bob.owner == a.id && by_bob.creator == b.id, "a writer adds to alice's tree");
    cr_expect_eq(status_of([&] { s.update(b.id, f.id, {}, a.root, 0); }), 404,
                 "bob cannot move a file where he cannot see");
    cr_expect_eq(status_of([&] { s.trash(b.id, deep.id); }), 403,
                 "the root of a write share needs write on its folder to be trashed");
    cr_expect_eq(status_of([&] { s.share(b.id, f.id, c.id, Role::read); }), 403,
                 "only the owner shares");
    cr_expect(s.unshare(a.id, deep.id, b.id));
    cr_expect(s.unshare(a.id, shared.id, b.id));
    cr_expect_eq(role_on(s, {b.id}, f.id), Role::none, "unshared: gone");
    cr_expect(s.shared_with(b.id, 0, 10).empty());
}

Test(meta_store, followers_links_and_trash) {
    MetaStore s(g_dir / "db", 1);
    User a = s.create_user("alice", "a@example.org", "h");
    User b = s.create_user("bob", "b@example.org", "h");
    Node pub = s.create_folder(a.id, a.root, "Public");
    Node f = s.commit_file(a.id, file_in(pub.id, "sunset.jpg"));
    s.share(a.id, pub.id, 0, Role::read);
    cr_expect_eq(role_on(s, {b.id}, f.id), Role::none, "not a follower yet");
    s.follow(b.id, a.id);
    cr_expect_eq(role_on(s, {b.id}, f.id), Role::read, "followers read");
    cr_expect_eq(status_of([&] { s.share(a.id, pub.id, 0, Role::write); }), 400);

    auto [link, token] = s.create_link(a.id, pub.id, 0, "");
    auto l = s.link_by_token(token);
    cr_assert(l.has_value());
    cr_expect_eq(role_on(s, Principal{0, l->node}, f.id), Role::read, "a link opens below it");
    cr_expect_eq(role_on(s, Principal{0, l->node}, a.root), Role::none, "and nothing above");
    cr_expect(!s.link_by_token(token + "x"));
    auto [expired, old_token] = s.create_link(a.id, pub.id, 1, "");
    cr_expect(!s.link_by_token(old_token), "an expired link opens nothing");

    s.trash(a.id, pub.id);
    cr_expect_eq(role_on(s, {b.id}, f.id), Role::none, "trashed: hidden from followers");
    cr_expect_eq(role_on(s, Principal{0, l->node}, f.id), Role::none, "and from links");
    cr_expect_eq(role_on(s, {a.id}, f.id), Role::owner, "the owner still stats it by id");
    cr_expect_eq(status_of([&] { s.list(a.id, pub.id, "", 10); }), 404, "but cannot list it");
    cr_expect_eq(s.list_trash(a.id, "", 10).nodes.size(), 1u);
    cr_expect_eq(status_of([&] { s.restore(b.id, pub.id, {}); }), 404);
    s.restore(a.id, pub.id, {});
    cr_expect_eq(role_on(s, {b.id}, f.id), Role::read, "restored: the share is back");
    s.trash(a.id, pub.id);
    cr_expect_eq(s.purge(a.id, pub.id), 2u);
    cr_expect_eq(status_of([&] { s.stat(a.id, f.id); }), 404);
    cr_expect(!s.link_by_token(token), "purged nodes take their links");
    cr_expect(s.search(a.id, "sunset", 10).empty(), "and their search entries");
}

Test(meta_store, commits_are_searchable_in_the_same_transaction) {
    MetaStore s(g_dir / "db", 1);
    User a = s.create_user("alice", "a@example.org", "h");
    User b = s.create_user("bob", "b@example.org", "h");
    Node trips = s.create_folder(a.id, a.root, "Trips");
    Node f = s.commit_file(a.id, file_in(trips.id, "Café Lisboa.jpg"));
    auto hits = s.search(a.id, "cafe", 10);
    cr_assert_eq(hits.size(), 1u);
    cr_expect_eq(hits[0].node.id, f.id);
    cr_expect_eq(s.search(a.id, "trips", 10).size(), 2u, "the folder and, by path, the file");
    cr_expect(s.search(b.id, "cafe", 10).empty(), "bob sees nothing of alice's");
    s.share(a.id, trips.id, b.id, Role::read);
    cr_expect_eq(s.search(b.id, "lisboa", 10).size(), 1u, "unless it is shared with him");
    s.update(a.id, trips.id, std::string("Voyages"), {}, 0);
    cr_expect_eq(s.search(a.id, "voyages lisboa", 10).size(), 1u, "a folder rename reindexes");
    cr_expect(s.search(a.id, "trips", 10).empty());
}

Test(meta_store, node_records_round_trip_and_old_json_still_reads) {
    Node n;
    n.id = 1ULL << 60;
    n.owner = 7;
    n.parent = 9;
    n.name = "Café \"quoted\"\\x";
    n.kind = NodeKind::file;
    n.version = 42;
    n.created = -5; // times are signed
    n.modified = 1796000000000;
    n.creator = 8;
    n.trashed = 1796000000001;
    n.tags = {"été", "b"};
    n.size = 1ULL << 40;
    n.media_type = "video/mp4";
    n.sha256 = std::string(64, 'c');
    n.manifest = std::string(64, 'd');
    n.state = FileState::processing;
    n.renditions = nlohmann::json::array({{{"name", "720p"}}});
    Node back = decode_node(encode_node(n));
    cr_expect(back.id == n.id && back.owner == n.owner && back.parent == n.parent &&
              back.name == n.name && back.kind == n.kind && back.version == n.version &&
              back.created == n.created && back.modified == n.modified &&
              back.creator == n.creator && back.trashed == n.trashed && back.tags == n.tags &&
              back.size == n.size && back.media_type == n.media_type && back.sha256 == n.sha256 &&
              back.manifest == n.manifest && back.state == n.state &&
              back.renditions == n.renditions);
    // Records of the JSON era decode the same.
    Node old = decode_node(R"({"id":5,"owner":1,"parent":2,"name":"a","kind":"folder",)"
                           R"("version":3,"created":10,"modified":11})");
    cr_expect(old.id == 5 && old.name == "a" && old.kind == NodeKind::folder && old.version == 3 &&
              old.creator == 1);
    // Damaged records are an error, not a crash or garbage.
    std::string enc = encode_node(n);
    for (std::size_t cut : {std::size_t{1}, std::size_t{5}, enc.size() - 3})
        cr_expect_eq(status_of([&] {
                         try {
                             decode_node(std::string_view(enc).substr(0, cut));
                         } catch (const std::runtime_error&) {
                             throw StoreError(500, "damaged", "x");
                         }
                     }),
                     500, "cut at %zu", cut);
}

// The page as list_json gives it (the stored listing JSON) and as the records say it.
static std::pair<std::string, std::string> both_listings(MetaStore& s, std::uint64_t user,
                                                         std::uint64_t folder) {
    std::string stored, rendered;
    s.list_json(Principal{user}, folder, "", 100,
                [&](std::string_view j) { stored.append(j).push_back('\n'); });
    for (const Node& n : s.list(user, folder, "", 100).nodes) {
        append_node_json(rendered, s.stat(user, n.id));
        rendered.push_back('\n');
    }
    return {stored, rendered};
}

Test(meta_store, listings_copied_from_children_entries_follow_every_write) {
    std::uint64_t user = 0, root = 0, docs = 0;
    {
        MetaStore s(g_dir / "db", 1);
        User a = s.create_user("alice", "a@example.org", "h");
        user = a.id;
        root = a.root;
        docs = s.create_folder(a.id, a.root, "Docs").id;
        Node sub = s.create_folder(a.id, docs, "Sub");
        auto commit = [&](const char* name) {
            FileCommit f;
            f.parent = docs;
            f.name = name;
            f.size = 3;
            f.media_type = "video/mp4";
            f.sha256 = std::string(64, 'a');
            f.manifest = std::string(64, 'b');
            f.tags = {"Été"};
            return s.commit_file(a.id, f);
        };
        Node x = commit("x.mp4"), y = commit("y \"q\".mp4");
        auto same = [&](const char* after) {
            auto [stored, rendered] = both_listings(s, user, docs);
            cr_expect(stored == rendered, "after %s:\n%s\nvs\n%s", after, stored.c_str(),
                      rendered.c_str());
            return stored;
        };
        same("commits");
        s.update(a.id, y.id, std::string("z.mp4"), {}, 0, std::vector<std::string>{"t"});
        same("a rename with new tags");
        s.update(a.id, x.id, {}, sub.id, 0);
        same("a move out");
        cr_expect_eq(both_listings(s, user, sub.id).first, both_listings(s, user, sub.id).second);
        s.update(a.id, x.id, {}, docs, 0);
        s.set_file_state(x.id, FileState::processing, nlohmann::json::array(),
                         {{"percent", 41.25}, {"stage", "encoding"}});
        cr_expect(same("progress")
                      .find("\"processing\":{\"percent\":41.3,\"stage\":"
                            "\"encoding\"}") != std::string::npos);
        cr_expect_eq(s.stat(a.id, x.id).processing, R"({"percent":41.3,"stage":"encoding"})");
        s.set_file_state(x.id, FileState::failed, nlohmann::json::array(),
                         {{"error", "not a video"}});
        cr_expect(same("failure").find("\"error\":\"not a video\"") != std::string::npos);
        for (const auto& bad : {nlohmann::json{{"percent", 101}}, nlohmann::json{{"stage", 1}},
                                nlohmann::json::array()})
            try {
                s.set_file_state(x.id, FileState::processing, nlohmann::json::array(), bad);
                cr_expect(false, "%s accepted", bad.dump().c_str());
            } catch (const StoreError& e) {
                cr_expect_eq(e.status(), 400);
            }
        try {
            s.set_file_state(x.id, FileState::failed, nlohmann::json::array(), nullptr);
            cr_expect(false, "a failure without its reason accepted");
        } catch (const StoreError& e) {
            cr_expect_str_eq(e.code().c_str(), "bad_processing");
        }
        s.set_file_state(x.id, FileState::ready, nlohmann::json::array({{{"name", "720p"}}}));
        cr_expect(same("processing").find("720p") != std::string::npos);
        cr_expect(same("ready").find("\"processing\"") == std::string::npos, "ready: no note");
        s.trash(a.id, y.id);
        cr_expect(same("trash").find("z.mp4") == std::string::npos, "trashed: not listed");
        s.restore(a.id, y.id, std::string("back.mp4"));
        cr_expect(same("restore").find("back.mp4") != std::string::npos);
    }
    // Every entry carries the JSON its record gives. Then entries of an earlier release,
    // holding the id alone: listed from the records.
    {
        strata::lmdb::Env env(g_dir / "db", strata::lmdb::EnvOptions{});
        auto children = env.open_dbi("children");
        auto nodes = env.open_dbi("nodes");
        env.write([&](strata::lmdb::Txn& t) {
            std::vector<std::pair<std::string, std::string>> old;
            strata::lmdb::Cursor c(t, children);
            for (auto [k, v] : c.from(std::string_view("\0", 1))) {
                auto rec = t.get(nodes, v.substr(0, 8));
                cr_assert(rec, "a children entry without its record");
                std::string want;
                append_node_json(want, decode_node(*rec));
                auto j = child_json(v);
                cr_expect(j && *j == want, "stored %s, record %s",
                          j ? std::string(*j).c_str() : "(none)", want.c_str());
                old.emplace_back(std::string(k), std::string(v.substr(0, 8)));
            }
            for (const auto& [k, v] : old)
                t.put(children, k, v);
        });
    }
    MetaStore s(g_dir / "db", 1);
    auto [stored, rendered] = both_listings(s, user, docs);
    cr_expect(!stored.empty() && stored == rendered, "id-only entries:\n%s\nvs\n%s", stored.c_str(),
              rendered.c_str());
    cr_expect(both_listings(s, user, root).first == both_listings(s, user, root).second);
}
