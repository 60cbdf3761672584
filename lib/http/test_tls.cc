// TlsCertificate::load on certificates and keys made here with GnuTLS, and the priority
// strings TLS listeners get.
#include "http/tls.hh"

#include <criterion/criterion.h>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <stdexcept>
#include <string>
#include <unistd.h>

using namespace strata;

namespace {

struct Key {
    gnutls_x509_privkey_t k = nullptr;
    Key() {
        gnutls_x509_privkey_init(&k);
        gnutls_x509_privkey_generate(k, GNUTLS_PK_ECDSA,
                                     GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1), 0);
    }
    ~Key() { gnutls_x509_privkey_deinit(k); }
    std::string pem() const {
        gnutls_datum_t out{};
        gnutls_x509_privkey_export2(k, GNUTLS_X509_FMT_PEM, &out);
        std::string s(reinterpret_cast<char*>(out.data), out.size);
        gnutls_free(out.data);
        return s;
    }
};

struct Cert {
    gnutls_x509_crt_t c = nullptr;
    // Self-signed when issuer is null.
    Cert(const std::string& cn, const Key& key, const Cert* issuer = nullptr,
         const Key* issuer_key = nullptr, bool ca = false) {
        gnutls_x509_crt_init(&c);
        gnutls_x509_crt_set_version(c, 3);
        unsigned char serial[8] = {1, 2, 3, 4, 5, 6, 7, static_cast<unsigned char>(cn.size())};
        gnutls_x509_crt_set_serial(c, serial, sizeof serial);
        gnutls_x509_crt_set_dn_by_oid(c, GNUTLS_OID_X520_COMMON_NAME, 0, cn.data(),
                                      static_cast<unsigned>(cn.size()));
        std::time_t now = std::time(nullptr);
        gnutls_x509_crt_set_activation_time(c, now - 60);
        gnutls_x509_crt_set_expiration_time(c, now + 86400);
        gnutls_x509_crt_set_basic_constraints(c, ca ? 1 : 0, -1);
        gnutls_x509_crt_set_key(c, key.k);
        if (issuer)
            gnutls_x509_crt_sign2(c, issuer->c, issuer_key->k, GNUTLS_DIG_SHA256, 0);
        else
            gnutls_x509_crt_sign2(c, c, key.k, GNUTLS_DIG_SHA256, 0);
    }
    ~Cert() { gnutls_x509_crt_deinit(c); }
    std::string pem() const {
        gnutls_datum_t out{};
        gnutls_x509_crt_export2(c, GNUTLS_X509_FMT_PEM, &out);
        std::string s(reinterpret_cast<char*>(out.data), out.size);
        gnutls_free(out.data);
        return s;
    }
};

// A directory of the test's files, removed at the end.
struct Dir {
    std::filesystem::path path;
    Dir() {
        char tmpl[] = "/tmp/strata-test-tls.XXXXXX";
        path = mkdtemp(tmpl);
    }
    ~Dir() { std::filesystem::remove_all(path); }
    std::string write(const std::string& name, const std::string& text) const {
        auto p = path / name;
        std::ofstream(p) << text;
        return p.string();
    }
};

// What load() throws, or "" when it loads.
std::string load_error(const std::string& cert, const std::string& key) {
    try {
        http::TlsCertificate::load(cert, key);
        return "";
    } catch (const std::runtime_error& e) {
        return e.what();
    }
}

bool has(const std::string& s, const std::string& part) {
    return s.find(part) != std::string::npos;
}

} // namespace

Test(tls, loads_a_matching_pair) {
    Dir d;
    Key key;
    Cert cert("a.test", key);
    auto c = http::TlsCertificate::load(d.write("a.crt", cert.pem()), d.write("a.key", key.pem()));
    cr_assert_eq(c->subject(), "CN=a.test");
    cr_assert_eq(c->chain_length(), 1u);
    cr_assert_eq(c->not_after().size(), 20u); // 2026-01-31T12:00:00Z
    std::int64_t in = c->not_after_seconds() - std::time(nullptr);
    cr_assert(in > 86400 - 60 && in <= 86400, "expires in %lld s", static_cast<long long>(in));
    cr_assert_eq(c->key_pem(), key.pem());
}

Test(tls, loads_a_chain_leaf_first_and_refuses_it_unsorted) {
    Dir d;
    Key ca_key, leaf_key;
    Cert ca("Test CA", ca_key, nullptr, nullptr, true);
    Cert leaf("leaf.test", leaf_key, &ca, &ca_key);
    auto k = d.write("leaf.key", leaf_key.pem());
    auto c = http::TlsCertificate::load(d.write("chain.pem", leaf.pem() + ca.pem()), k);
    cr_assert_eq(c->chain_length(), 2u);
    cr_assert_eq(c->subject(), "CN=leaf.test");
    auto why = load_error(d.write("unsorted.pem", ca.pem() + leaf.pem()), k);
    cr_assert(has(why, "not a PEM certificate chain (leaf first)"), "%s", why.c_str());
}

Test(tls, refuses_the_key_of_another_certificate) {
    Dir d;
    Key key, other;
    Cert cert("a.test", key);
    auto crt = d.write("a.crt", cert.pem());
    auto kf = d.write("other.key", other.pem());
    auto why = load_error(crt, kf);
    cr_assert(has(why, kf + ": private key does not match the certificate in " + crt), "%s",
              why.c_str());
}

Test(tls, names_missing_empty_and_garbage_files) {
    Dir d;
    Key key;
    Cert cert("a.test", key);
    auto crt = d.write("a.crt", cert.pem());
    auto kf = d.write("a.key", key.pem());
    auto why = load_error(crt, (d.path / "nope.key").string());
    cr_assert(has(why, "nope.key: cannot open private key: No such file"), "%s", why.c_str());
    why = load_error(d.write("empty.crt", ""), kf);
    cr_assert(has(why, "empty.crt: certificate is empty"), "%s", why.c_str());
    why = load_error(d.write("junk.crt", "hello\n"), kf);
    cr_assert(has(why, "junk.crt: not a PEM certificate chain"), "%s", why.c_str());
    why = load_error(crt, d.write("junk.key", "-----BEGIN PRIVATE KEY-----\nAAAA\n"
                                              "-----END PRIVATE KEY-----\n"));
    cr_assert(has(why, "junk.key: not a PEM private key"), "%s", why.c_str());
    why = load_error(crt, "");
    cr_assert(has(why, "private key is not set"), "%s", why.c_str());
    std::string half = cert.pem().substr(0, cert.pem().size() / 2);
    why = load_error(d.write("half.crt", half), kf);
    cr_assert(has(why, "half.crt: not a PEM certificate chain"), "%s", why.c_str());
}

Test(tls, the_current_certificate_is_replaced_whole) {
    Dir d;
    Key k1, k2;
    Cert c1("one.test", k1), c2("two.test", k2);
    auto one = http::TlsCertificate::load(d.write("1.crt", c1.pem()), d.write("1.key", k1.pem()));
    auto two = http::TlsCertificate::load(d.write("2.crt", c2.pem()), d.write("2.key", k2.pem()));
    http::set_tls_certificate(one);
    auto held = http::tls_certificate(); // what a handshake under way copied from
    http::set_tls_certificate(two);
    cr_assert_eq(http::tls_certificate()->subject(), "CN=two.test");
    cr_assert_eq(held->subject(), "CN=one.test");
    http::set_tls_certificate(nullptr);
}

Test(tls, priorities_never_bring_back_old_versions) {
    std::string def = http::tls_priorities("", "1.2");
    cr_assert(def.rfind(http::kDefaultTlsPriorities, 0) == 0);
    cr_assert(has(def, ":-VERS-TLS1.0:-VERS-TLS1.1"));
    cr_assert_not(has(def, "-VERS-TLS1.2"));
    cr_assert_eq(http::check_tls_priorities(def), "");
    std::string p13 = http::tls_priorities("NORMAL:+VERS-TLS1.1", "1.3");
    cr_assert(p13.rfind("NORMAL:+VERS-TLS1.1:", 0) == 0);
    cr_assert(has(p13, "-VERS-TLS1.1") && has(p13, "-VERS-TLS1.2"));
    cr_assert_eq(http::check_tls_priorities(p13), "");
    std::string why = http::check_tls_priorities("NORMAL:+NO-SUCH-THING");
    cr_assert(has(why, "NO-SUCH-THING"), "%s", why.c_str());
}
