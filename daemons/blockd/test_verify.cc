// Unit tests of POST /v1/verify: size, SHA-256, libmagic media type, the libclamav verdict
// with a signature database generated here (EICAR test string as a .ndb hex signature), and
// the max size / allowed type limits. Handlers are called through http::Router::dispatch.

#include "block_store.hh"
#include "manifest.hh"
#include "scanner.hh"
#include "sha256.hh"
#include "verify.hh"

#include <criterion/criterion.h>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

using namespace strata;
using namespace strata::blockd;
namespace fs = std::filesystem;

static fs::path g_dir;

static void make_dir() {
    std::string tmpl = (fs::temp_directory_path() / "strata-verify-XXXXXX").string();
    cr_assert(mkdtemp(tmpl.data()) != nullptr, "mkdtemp failed");
    g_dir = tmpl;
}

static void remove_dir() {
    std::error_code ec;
    if (!g_dir.empty()) fs::remove_all(g_dir, ec);
}

TestSuite(verify, .init = make_dir, .fini = remove_dir, .timeout = 60);

// The standard antivirus test file (harmless).
static const std::string kEicar =
    "X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!H+H*";
static const std::string kSigName = "Strata.Test.EICAR";

static std::string hex_of(std::string_view s) {
    static const char* d = "0123456789abcdef";
    std::string out;
    for (unsigned char c : s) {
        out += d[c >> 4];
        out += d[c & 15];
    }
    return out;
}

// A signature directory with one .ndb body signature: the EICAR string anywhere in any file.
static fs::path make_sigdir() {
    fs::path dir = g_dir / "sigs";
    fs::create_directories(dir);
    std::ofstream(dir / "strata-test.ndb") << kSigName << ":0:*:" << hex_of(kEicar) << "\n";
    return dir;
}

static std::string pattern(std::size_t n, unsigned seed) {
    std::string s(n, '\0');
    std::uint32_t x = seed * 2654435761u + 1;
    for (auto& c : s) {
        x = x * 1103515245u + 12345u;
        c = static_cast<char>('a' + (x >> 16) % 26); // letters only: cannot contain EICAR
    }
    return s;
}

struct Env {
    std::unique_ptr<BlockStore> blocks, manifests;
    http::Router router;

    explicit Env(VerifyOptions options) {
        blocks = std::make_unique<BlockStore>(g_dir / "store");
        manifests = std::make_unique<BlockStore>(g_dir / "store" / "manifests");
        add_verify_routes(router, *blocks, *manifests, std::move(options));
    }

    // Splits content into 4 MiB blocks; returns their hashes.
    std::vector<std::string> store(std::string_view content) {
        std::vector<std::string> hashes;
        for (std::size_t off = 0; off < content.size() || hashes.empty(); off += max_block_size) {
            auto piece = content.substr(off, max_block_size);
            hashes.push_back(blocks->put(sha256_hex(piece), piece).hash);
            if (piece.empty()) break;
        }
        return hashes;
    }

    std::string store_manifest(std::string_view content) {
        Manifest m;
        m.size = content.size();
        m.sha256 = sha256_hex(content);
        auto hashes = store(content);
        for (std::size_t i = 0; i < hashes.size(); ++i)
            m.blocks.push_back(
                {hashes[i],
                 std::min<std::uint64_t>(max_block_size, content.size() - i * max_block_size)});
        std::string enc = m.encode();
        std::string id = sha256_hex(enc);
        manifests->put(id, enc);
        return id;
    }

    http::Response post(const nlohmann::json& body) {
        http::Request req;
        req.method = "POST";
        req.path = "/v1/verify";
        req.version = "HTTP/1.1";
        req.headers.emplace("Content-Type", "application/json");
        req.body = body.dump();
        return router.dispatch(req);
    }

    nlohmann::json verify(std::string_view content, int expect_status = 200) {
        auto r = post({{"blocks", store(content)}});
        cr_assert_eq(r.status, expect_status, "status %d (want %d): %s", r.status, expect_status,
                     r.body.c_str());
        return nlohmann::json::parse(r.body);
    }
};

static VerifyOptions with_scanner() {
    VerifyOptions o;
    o.scanner = std::make_shared<Scanner>(make_sigdir());
    return o;
}

Test(verify, scanner_loads_generated_signatures) {
    Scanner s(make_sigdir());
    cr_assert_geq(s.signatures(), 1u);
}

Test(verify, eicar_is_infected_with_signature_name) {
    Env env(with_scanner());
    auto j = env.verify(kEicar);
    cr_assert_eq(j["scan"]["verdict"], "infected", "%s", j.dump().c_str());
    // libclamav marks signatures from outside its official databases with ".UNOFFICIAL".
    cr_assert_eq(j["scan"]["signature"], kSigName + ".UNOFFICIAL", "%s", j.dump().c_str());
    cr_assert_eq(j["size"], kEicar.size());
    cr_assert_eq(j["sha256"], sha256_hex(kEicar));
}

Test(verify, eicar_embedded_in_text_is_infected) {
    Env env(with_scanner());
    auto j = env.verify("hello\n" + kEicar + "\nbye\n");
    cr_assert_eq(j["scan"]["verdict"], "infected", "%s", j.dump().c_str());
}

Test(verify, clean_text_is_clean_and_typed) {
    Env env(with_scanner());
    std::string text = "Just a plain text file.\nWith two lines.\n";
    auto j = env.verify(text);
    cr_assert_eq(j["scan"]["verdict"], "clean", "%s", j.dump().c_str());
    cr_assert(!j["scan"].contains("signature"));
    cr_assert_eq(j["media_type"], "text/plain", "%s", j.dump().c_str());
    cr_assert_eq(j["size"], text.size());
    cr_assert_eq(j["sha256"], sha256_hex(text));
}

Test(verify, png_header_is_image_png) {
    Env env({});
    // PNG signature + IHDR chunk (1x1, 8-bit RGBA) + padding.
    std::string png("\x89PNG\r\n\x1a\n"
                    "\x00\x00\x00\x0dIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00"
                    "\x1f\x15\xc4\x89",
                    33);
    png += std::string(100, '\0');
    auto j = env.verify(png);
    cr_assert_eq(j["media_type"], "image/png", "%s", j.dump().c_str());
}

Test(verify, no_scanner_is_unavailable) {
    Env env({});
    auto j = env.verify(kEicar);
    cr_assert_eq(j["scan"]["verdict"], "unavailable");
    cr_assert(j["scan"]["reason"].get<std::string>().size() > 0);
}

Test(verify, missing_or_empty_sigdir_gives_no_scanner) {
    cr_assert_null(Scanner::load_if_present(g_dir / "nope"));
    fs::create_directories(g_dir / "empty");
    cr_assert_null(Scanner::load_if_present(g_dir / "empty"));
    cr_assert_not_null(Scanner::load_if_present(make_sigdir()));
}

Test(verify, multi_block_size_and_sha256) {
    Env env(with_scanner());
    std::string content = pattern(2 * max_block_size + 12345, 7);
    auto hashes = env.store(content);
    cr_assert_eq(hashes.size(), 3u);
    auto j = env.verify(content);
    cr_assert_eq(j["size"], content.size());
    cr_assert_eq(j["sha256"], sha256_hex(content));
    cr_assert_eq(j["scan"]["verdict"], "clean", "%s", j.dump().c_str());
}

Test(verify, signature_spanning_a_block_boundary_is_found) {
    Env env(with_scanner());
    std::string content = pattern(max_block_size - 30, 3) + kEicar + pattern(1000, 4);
    auto hashes = env.store(content);
    cr_assert_eq(hashes.size(), 2u);
    // Neither block alone holds the whole string.
    cr_assert_eq(env.blocks->stat(hashes[0])->size, max_block_size);
    auto j = env.verify(content);
    cr_assert_eq(j["scan"]["verdict"], "infected", "%s", j.dump().c_str());
    cr_assert_eq(j["scan"]["signature"], kSigName + ".UNOFFICIAL");
    cr_assert_eq(j["sha256"], sha256_hex(content));
    // Per-block scanning would miss it: each block on its own is clean.
    Scanner s(make_sigdir());
    for (const auto& h : hashes) {
        int fd = env.blocks->open_read(h);
        cr_assert_eq(s.scan_fd(fd).verdict, Verdict::clean);
        close(fd);
    }
}

Test(verify, by_manifest_id) {
    Env env(with_scanner());
    std::string content = pattern(max_block_size + 10, 9);
    std::string id = env.store_manifest(content);
    auto r = env.post({{"id", id}});
    cr_assert_eq(r.status, 200, "%s", r.body.c_str());
    auto j = nlohmann::json::parse(r.body);
    cr_assert_eq(j["size"], content.size());
    cr_assert_eq(j["sha256"], sha256_hex(content));
    cr_assert_eq(env.post({{"id", std::string(64, 'a')}}).status, 404);
}

Test(verify, max_size_is_413) {
    VerifyOptions o;
    o.max_bytes = 100;
    Env env(o);
    env.verify(std::string(100, 'x'), 200);
    auto j = env.verify(std::string(101, 'x'), 413);
    cr_assert_eq(j["error"]["code"], "payload_too_large");
}

Test(verify, allowed_types_are_415_otherwise) {
    VerifyOptions o;
    o.allowed_types = {"image/*", "application/pdf"};
    Env env(o);
    auto j = env.verify("plain text here\n", 415);
    cr_assert_eq(j["error"]["code"], "unsupported_media_type");
    env.verify("%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n", 200);
    cr_assert(media_type_allowed({}, "anything/at-all"));
    cr_assert(media_type_allowed({"text/plain"}, "text/plain"));
    cr_assert_not(media_type_allowed({"text/plain"}, "text/html"));
    cr_assert(media_type_allowed({"image/*"}, "image/png"));
    cr_assert_not(media_type_allowed({"image/*"}, "imagex/png"));
}

Test(verify, bad_requests) {
    Env env({});
    cr_assert_eq(env.post(nlohmann::json::object()).status, 400);
    cr_assert_eq(env.post({{"blocks", nlohmann::json::array()}}).status, 400);
    cr_assert_eq(env.post({{"blocks", {"nothex"}}}).status, 400);
    cr_assert_eq(env.post({{"blocks", {std::string(64, 'a')}}, {"id", "x"}}).status, 400);
    auto r = env.post({{"blocks", {std::string(64, 'b')}}});
    cr_assert_eq(r.status, 404);
    cr_assert_eq(nlohmann::json::parse(r.body)["error"]["code"], "missing_blocks");
}

Test(verify, empty_block_is_empty_content) {
    Env env(with_scanner());
    auto j = env.verify("");
    cr_assert_eq(j["size"], 0);
    cr_assert_eq(j["sha256"], sha256_hex(""));
    cr_assert_eq(j["scan"]["verdict"], "clean");
}

Test(verify, manifest_true_stores_a_servable_manifest) {
    Env env(with_scanner());
    std::string content = pattern(max_block_size + 99, 3);
    auto r = env.post({{"blocks", env.store(content)}, {"manifest", true}, {"type", "Video/MP4"}});
    cr_assert_eq(r.status, 200, "%s", r.body.c_str());
    auto j = nlohmann::json::parse(r.body);
    std::string id = j["manifest"];
    auto info = env.manifests->stat(id);
    cr_assert(info.has_value(), "the manifest is stored");
    auto m = load_manifest(*env.manifests, *info);
    cr_assert(m.has_value());
    cr_assert_eq(m->size, content.size());
    cr_assert_eq(m->sha256, sha256_hex(content));
    cr_assert_eq(m->type, "video/mp4", "the declared type, normalized");
    cr_assert_eq(m->blocks.size(), 2u);
    cr_assert_eq(m->blocks[1].size, 99u);
    // Verifying by that id reads the same content.
    auto again = nlohmann::json::parse(env.post({{"id", id}}).body);
    cr_assert_eq(again["sha256"], sha256_hex(content));
    // Without "manifest" nothing is answered; bad values are 400.
    cr_assert(!env.verify("x").contains("manifest"));
    cr_assert_eq(env.post({{"blocks", env.store("x")}, {"manifest", "yes"}}).status, 400);
    cr_assert_eq(env.post({{"blocks", env.store("x")}, {"type", "text/html;x=1"}}).status, 400);
}

Test(verify, infected_content_gets_no_manifest) {
    Env env(with_scanner());
    auto r = env.post({{"blocks", env.store(kEicar)}, {"manifest", true}});
    auto j = nlohmann::json::parse(r.body);
    cr_assert_eq(j["scan"]["verdict"], "infected");
    cr_assert(!j.contains("manifest"));
}
