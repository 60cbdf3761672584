// libFuzzer target for http::TlsCertificate::load, what reads [tls] certificate_file and
// key_file at start, --check-config and every reload. The input is the certificate file, a
// NUL byte, then the key file (no NUL: the key file is empty). Any content gets an error
// message or a certificate, never a crash or a leak; a certificate that loads is handed
// out per handshake, so the handshake callback must give its whole chain and key too.
#include "http/tls.hh"

#include <cstdint>
#include <cstring>
#include <gnutls/abstract.h>
#include <gnutls/gnutls.h>
#include <stdexcept>
#include <string>
#include <sys/mman.h>
#include <unistd.h>

namespace {

// A file in memory, named by its /proc/self/fd path like a path in the config.
struct MemFile {
    int fd;
    explicit MemFile(const std::string& text) : fd(memfd_create("fuzz-tls", MFD_CLOEXEC)) {
        if (fd >= 0 && !text.empty()) (void)!write(fd, text.data(), text.size());
    }
    ~MemFile() {
        if (fd >= 0) close(fd);
    }
    std::string path() const { return "/proc/self/fd/" + std::to_string(fd); }
};

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::string input(reinterpret_cast<const char*>(data), size);
    auto nul = input.find('\0');
    std::string cert = input.substr(0, nul);
    std::string key = nul == std::string::npos ? std::string() : input.substr(nul + 1);
    MemFile c(cert), k(key);
    if (c.fd < 0 || k.fd < 0) return 0;
    std::shared_ptr<const strata::http::TlsCertificate> loaded;
    try {
        loaded = strata::http::TlsCertificate::load(c.path(), k.path());
    } catch (const std::runtime_error& e) {
        if (std::strlen(e.what()) == 0) __builtin_trap(); // errors say what is wrong
        return 0;
    }
    if (loaded->chain_length() == 0) __builtin_trap(); // a chain that loads has a leaf
    // What a handshake gets: the whole chain and the key, owned by the caller.
    strata::http::set_tls_certificate(loaded);
    auto* retrieve = reinterpret_cast<gnutls_certificate_retrieve_function3*>(
        strata::http::tls_certificate_callback());
    gnutls_cert_retr_st info{};
    info.version = 1;
    gnutls_pcert_st* certs = nullptr;
    unsigned n = 0, ocsp_n = 0, flags = 0;
    gnutls_ocsp_data_st* ocsp = nullptr;
    gnutls_privkey_t privkey = nullptr;
    if (retrieve(nullptr, &info, &certs, &n, &ocsp, &ocsp_n, &privkey, &flags) != 0 ||
        n != loaded->chain_length() || !privkey || flags != GNUTLS_CERT_RETR_DEINIT_ALL)
        __builtin_trap();
    for (unsigned i = 0; i < n; ++i)
        gnutls_pcert_deinit(&certs[i]);
    gnutls_free(certs);
    gnutls_privkey_deinit(privkey);
    strata::http::set_tls_certificate(nullptr);
    return 0;
}
