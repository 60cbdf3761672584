// TLS for the general HTTP engine (libmicrohttpd with GnuTLS): a certificate chain and its
// private key, loaded from PEM files and checked to belong together, and the certificate the
// process's TLS listeners present. libmicrohttpd asks for the certificate at every handshake
// (MHD_OPTION_HTTPS_CERT_CALLBACK2), so replacing it (reload) changes what new handshakes
// get without restarting a listener or touching established connections.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

namespace strata::http {

class TlsCertificate {
public:
    // Reads both files and checks the key matches the first certificate of the chain.
    // Throws std::runtime_error naming the file and what is wrong.
    static std::shared_ptr<const TlsCertificate> load(const std::string& certificate_file,
                                                      const std::string& key_file);
    ~TlsCertificate();
    TlsCertificate(const TlsCertificate&) = delete;
    TlsCertificate& operator=(const TlsCertificate&) = delete;

    const std::string& subject() const { return subject_; }               // of the leaf certificate
    const std::string& not_after() const { return not_after_; }           // "2027-01-31T12:00:00Z"
    std::int64_t not_after_seconds() const { return not_after_seconds_; } // since the epoch
    unsigned chain_length() const { return chain_length_; }

    // PEM text as read (the key is wiped from memory when the object goes).
    const std::string& certificate_pem() const { return cert_pem_; }
    const std::string& key_pem() const { return key_pem_; }

private:
    TlsCertificate() = default;
    std::string cert_pem_, key_pem_, subject_, not_after_;
    unsigned chain_length_ = 0;
    std::int64_t not_after_seconds_ = 0;
};

// The certificate every TLS listener of the process presents from the next handshake on.
// Set it before serving TLS; the loop thread replaces it on reload.
void set_tls_certificate(std::shared_ptr<const TlsCertificate> certificate);
std::shared_ptr<const TlsCertificate> tls_certificate();

// The GnuTLS priority string a TLS listener uses: `priorities` ("" = the default below:
// TLS 1.3 and 1.2, AEAD ciphers, forward-secret key exchange only, no SHA-1 signatures)
// with every protocol version under `min_version` ("1.2" or "1.3") removed, so no setting
// of `priorities` brings back TLS 1.0/1.1.
inline constexpr const char* kDefaultTlsPriorities =
    "SECURE128:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2:-CIPHER-ALL:+AES-256-GCM:+AES-128-GCM:"
    "+CHACHA20-POLY1305:-MAC-ALL:+AEAD:-RSA:%SERVER_PRECEDENCE";
std::string tls_priorities(const std::string& priorities, const std::string& min_version);

// Checks that GnuTLS accepts a priority string; returns "" or the reason (with where the
// string goes wrong).
std::string check_tls_priorities(const std::string& priorities);

// Handed to libmicrohttpd as MHD_OPTION_HTTPS_CERT_CALLBACK2 (a
// gnutls_certificate_retrieve_function3*; void* keeps GnuTLS out of this header).
void* tls_certificate_callback();

} // namespace strata::http
