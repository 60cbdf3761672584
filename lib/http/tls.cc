#include "http/tls.hh"

#include "log/utc_time.hh"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <fcntl.h>
#include <gnutls/abstract.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <mutex>
#include <stdexcept>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

namespace strata::http {

namespace {

constexpr std::size_t kMaxPemBytes = 1 << 20; // a chain is a few KiB

// Reads a whole PEM file. The buffer is sized from fstat so the text is not reallocated
// (a private key leaves no copies in freed memory), and the read buffer is wiped.
std::string read_pem(const std::string& path, const char* what) {
    if (path.empty()) throw std::runtime_error(std::string(what) + " is not set");
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) throw std::runtime_error(path + ": cannot open " + what + ": " + strerror(errno));
    struct stat st {};
    std::size_t expected =
        ::fstat(fd, &st) == 0 && st.st_size > 0 ? static_cast<std::size_t>(st.st_size) : 0;
    std::string text;
    text.reserve(std::min(expected, kMaxPemBytes) + 1);
    char buf[8192];
    int error = 0;
    for (;;) {
        ssize_t n = ::read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) error = errno;
        if (n <= 0) break;
        text.append(buf, static_cast<std::size_t>(n));
        if (text.size() > kMaxPemBytes) break;
    }
    explicit_bzero(buf, sizeof buf);
    ::close(fd);
    if (error) throw std::runtime_error(path + ": cannot read " + what + ": " + strerror(error));
    if (text.size() > kMaxPemBytes) {
        explicit_bzero(text.data(), text.size());
        throw std::runtime_error(path + ": " + what + " larger than 1 MiB");
    }
    if (text.empty()) throw std::runtime_error(path + ": " + what + " is empty");
    return text;
}

gnutls_datum_t datum(const std::string& s) {
    return {reinterpret_cast<unsigned char*>(const_cast<char*>(s.data())),
            static_cast<unsigned>(s.size())};
}

std::string iso8601(time_t t) {
    return log::utc_time(t);
}

// The key as GnuTLS will use it at each handshake; nullptr when it does not parse.
gnutls_privkey_t import_key(const std::string& pem) {
    gnutls_privkey_t key = nullptr;
    if (gnutls_privkey_init(&key) < 0) return nullptr;
    gnutls_datum_t d = datum(pem);
    if (gnutls_privkey_import_x509_raw(key, &d, GNUTLS_X509_FMT_PEM, nullptr, 0) < 0) {
        gnutls_privkey_deinit(key);
        return nullptr;
    }
    return key;
}

std::mutex g_mu;
std::shared_ptr<const TlsCertificate> g_current;

// gnutls_certificate_retrieve_function3: a fresh copy of the current chain and key for
// each handshake, owned by the session (GNUTLS_CERT_RETR_DEINIT_ALL), so a reload may drop
// the old certificate while sessions made with it still live.
int retrieve(gnutls_session_t, const gnutls_cert_retr_st*, gnutls_pcert_st** certs,
             unsigned* certs_length, gnutls_ocsp_data_st** ocsp, unsigned* ocsp_length,
             gnutls_privkey_t* privkey, unsigned* flags) {
    std::shared_ptr<const TlsCertificate> c = tls_certificate();
    if (!c) return -1; // the handshake fails; nothing to present
    unsigned n = c->chain_length();
    auto* list = static_cast<gnutls_pcert_st*>(gnutls_calloc(n, sizeof(gnutls_pcert_st)));
    if (!list) return -1;
    gnutls_datum_t d = datum(c->certificate_pem());
    if (gnutls_pcert_list_import_x509_raw(list, &n, &d, GNUTLS_X509_FMT_PEM, 0) < 0) {
        gnutls_free(list);
        return -1;
    }
    gnutls_privkey_t key = import_key(c->key_pem());
    if (!key) {
        for (unsigned i = 0; i < n; ++i)
            gnutls_pcert_deinit(&list[i]);
        gnutls_free(list);
        return -1;
    }
    *certs = list;
    *certs_length = n;
    *ocsp = nullptr;
    *ocsp_length = 0;
    *privkey = key;
    *flags = GNUTLS_CERT_RETR_DEINIT_ALL;
    return 0;
}

} // namespace

std::shared_ptr<const TlsCertificate> TlsCertificate::load(const std::string& certificate_file,
                                                           const std::string& key_file) {
    std::shared_ptr<TlsCertificate> c(new TlsCertificate());
    c->cert_pem_ = read_pem(certificate_file, "certificate");
    c->key_pem_ = read_pem(key_file, "private key");

    gnutls_x509_crt_t* crts = nullptr;
    unsigned n = 0;
    gnutls_datum_t cd = datum(c->cert_pem_);
    int rc = gnutls_x509_crt_list_import2(&crts, &n, &cd, GNUTLS_X509_FMT_PEM,
                                          GNUTLS_X509_CRT_LIST_FAIL_IF_UNSORTED);
    if (rc < 0 || n == 0)
        throw std::runtime_error(certificate_file + ": not a PEM certificate chain (leaf first): " +
                                 (rc < 0 ? gnutls_strerror(rc) : "no certificate"));
    gnutls_datum_t dn{};
    if (gnutls_x509_crt_get_dn3(crts[0], &dn, 0) >= 0) {
        c->subject_.assign(reinterpret_cast<char*>(dn.data), dn.size);
        gnutls_free(dn.data);
    }
    c->not_after_seconds_ = gnutls_x509_crt_get_expiration_time(crts[0]);
    c->not_after_ = iso8601(static_cast<time_t>(c->not_after_seconds_));
    c->chain_length_ = n;
    for (unsigned i = 0; i < n; ++i)
        gnutls_x509_crt_deinit(crts[i]);
    gnutls_free(crts);

    gnutls_privkey_t key = import_key(c->key_pem_);
    if (!key)
        throw std::runtime_error(key_file + ": not a PEM private key (encrypted keys are not "
                                            "supported)");
    gnutls_privkey_deinit(key);

    // GnuTLS compares the key with the leaf's public key when both go into credentials.
    gnutls_certificate_credentials_t cred = nullptr;
    if (gnutls_certificate_allocate_credentials(&cred) < 0)
        throw std::runtime_error("GnuTLS cannot allocate credentials");
    gnutls_datum_t kd = datum(c->key_pem_);
    rc = gnutls_certificate_set_x509_key_mem2(cred, &cd, &kd, GNUTLS_X509_FMT_PEM, nullptr, 0);
    gnutls_certificate_free_credentials(cred);
    if (rc == GNUTLS_E_CERTIFICATE_KEY_MISMATCH)
        throw std::runtime_error(key_file + ": private key does not match the certificate in " +
                                 certificate_file);
    if (rc < 0)
        throw std::runtime_error(certificate_file + ", " + key_file + ": " + gnutls_strerror(rc));
    return c;
}

TlsCertificate::~TlsCertificate() {
    explicit_bzero(key_pem_.data(), key_pem_.size());
}

void set_tls_certificate(std::shared_ptr<const TlsCertificate> certificate) {
    std::lock_guard lock(g_mu);
    g_current = std::move(certificate);
}

std::shared_ptr<const TlsCertificate> tls_certificate() {
    std::lock_guard lock(g_mu);
    return g_current;
}

std::string tls_priorities(const std::string& priorities, const std::string& min_version) {
    std::string p = priorities.empty() ? kDefaultTlsPriorities : priorities;
    p += ":-VERS-SSL3.0:-VERS-TLS1.0:-VERS-TLS1.1:-VERS-DTLS-ALL";
    if (min_version == "1.3") p += ":-VERS-TLS1.2";
    return p;
}

std::string check_tls_priorities(const std::string& priorities) {
    gnutls_priority_t cache = nullptr;
    const char* where = nullptr;
    int rc = gnutls_priority_init(&cache, priorities.c_str(), &where);
    if (rc < 0) {
        std::string why = gnutls_strerror(rc);
        if (where) why += std::string(" at \"") + where + "\"";
        return why;
    }
    gnutls_priority_deinit(cache);
    return "";
}

void* tls_certificate_callback() {
    return reinterpret_cast<void*>(&retrieve);
}

} // namespace strata::http
