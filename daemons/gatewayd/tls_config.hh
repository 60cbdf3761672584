// The [tls] section: HTTPS listeners next to the plain ones, presenting a certificate read
// from PEM files. The files are read at start, by --check-config and at every reload, so a
// renewed certificate is picked up by SIGHUP; a pair that does not load or match is refused
// and the certificate in use stays.
#pragma once

#include "config/config.hh"
#include "http/tls.hh"
#include "metrics/metrics.hh"

#include <memory>
#include <string>

namespace strata::gatewayd {

void tls_schema(config::Schema& s);

// The certificate and key the config names, loaded and checked; nullptr when it names
// none. Throws std::runtime_error saying which key or file is wrong.
std::shared_ptr<const http::TlsCertificate> tls_certificate(const config::Config& cfg);

// tls.priorities with tls.min_version applied.
std::string tls_priorities(const config::Config& cfg);

// Presents `cert` from the next handshake on, and says so in the log.
void use_tls_certificate(std::shared_ptr<const http::TlsCertificate> cert);

// strata_gateway_tls_certificate_expiry_timestamp_seconds, of the certificate in use.
void install_tls_metrics(metrics::Registry& registry);

} // namespace strata::gatewayd
