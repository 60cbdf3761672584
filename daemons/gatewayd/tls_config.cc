#include "tls_config.hh"

#include "log/log.hh"
#include "log/utc_time.hh"

#include <ctime>
#include <stdexcept>

namespace strata::gatewayd {

void tls_schema(config::Schema& s) {
    s.string_list("tls.listen", {}, false,
                  "TCP listeners (host:port) serving HTTPS when systemd passes no 'public-tls' "
                  "socket (empty: none)");
    s.string("tls.certificate_file", "", true,
             "PEM certificate chain, leaf first, presented by the HTTPS listeners (re-read on "
             "reload)");
    s.string("tls.key_file", "", true,
             "PEM private key of the certificate (unencrypted; readable by the daemon's user)");
    s.string("tls.min_version", "1.2", false, "lowest TLS version accepted", {"1.2", "1.3"});
    s.string("tls.priorities", "", false,
             "GnuTLS priority string (\"\": the built-in modern default); versions under "
             "min_version are always removed",
             {}, [](const config::Value& v) -> std::string {
                 return http::check_tls_priorities(
                     http::tls_priorities(std::get<std::string>(v), "1.2"));
             });
}

std::shared_ptr<const http::TlsCertificate> tls_certificate(const config::Config& cfg) {
    const auto& cert = cfg.string("tls.certificate_file");
    const auto& key = cfg.string("tls.key_file");
    if (cert.empty() && key.empty()) {
        if (!cfg.string_list("tls.listen").empty())
            throw std::runtime_error(
                "tls.listen serves HTTPS: set tls.certificate_file and tls.key_file");
        return nullptr;
    }
    if (cert.empty()) throw std::runtime_error("tls.key_file is set: set tls.certificate_file");
    if (key.empty()) throw std::runtime_error("tls.certificate_file is set: set tls.key_file");
    if (auto why = http::check_tls_priorities(tls_priorities(cfg)); !why.empty())
        throw std::runtime_error("tls.priorities with tls.min_version: " + why);
    return http::TlsCertificate::load(cert, key);
}

std::string tls_priorities(const config::Config& cfg) {
    return http::tls_priorities(cfg.string("tls.priorities"), cfg.string("tls.min_version"));
}

void use_tls_certificate(std::shared_ptr<const http::TlsCertificate> cert) {
    log::notice("TLS certificate \"{}\" ({} in the chain), valid until {}", cert->subject(),
                cert->chain_length(), cert->not_after());
    if (cert->not_after() < log::utc_time(std::time(nullptr)))
        log::warning("the TLS certificate has expired");
    http::set_tls_certificate(std::move(cert));
}

void install_tls_metrics(metrics::Registry& registry) {
    registry.gauge_callback("strata_gateway_tls_certificate_expiry_timestamp_seconds",
                            "When the TLS certificate in use expires, seconds since the epoch "
                            "(0: none)",
                            [] {
                                auto c = http::tls_certificate();
                                return c ? static_cast<double>(c->not_after_seconds()) : 0.0;
                            });
}

} // namespace strata::gatewayd
