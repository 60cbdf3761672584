#include "auth/jwks.hh"

#include "auth/encoding.hh"

#include <climits>
#include <fstream>
#include <gnutls/abstract.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <nlohmann/json.hpp>
#include <sodium.h>
#include <stdexcept>
#include <utility>

namespace strata::auth {

namespace {

using json = nlohmann::json;

constexpr std::size_t kMaxFileBytes = 1 << 20;
constexpr std::size_t kMinHmacKeyBytes = 32; // RFC 7518 3.2: at least the hash size
constexpr std::size_t kMinRsaBits = 2048;    // RFC 7518 3.3
constexpr std::size_t kMaxRsaBits = 8192;    // beyond, verifying costs too much per token
constexpr std::size_t kEcCoordinateBytes = 32;

// While reading one key: a key of a known type that cannot be used as given (an error).
struct BadKey : std::invalid_argument {
    using std::invalid_argument::invalid_argument;
};
// While reading one key: a key that is fine but not for us (skipped and listed).
struct Skip {
    std::string why;
};

// Owns a gnutls_pubkey_t until it is handed to a Jwk.
struct Pubkey {
    gnutls_pubkey_t key = nullptr;
    Pubkey() {
        if (gnutls_pubkey_init(&key) < 0) throw std::bad_alloc();
    }
    ~Pubkey() {
        if (key) gnutls_pubkey_deinit(key);
    }
    Pubkey(const Pubkey&) = delete;
    Pubkey& operator=(const Pubkey&) = delete;
    gnutls_pubkey_t release() { return std::exchange(key, nullptr); }
};

struct KeyParts {
    JwkType type = JwkType::oct;
    std::optional<std::string> kid;
    std::string secret;
    std::unique_ptr<Pubkey> pub;
    std::size_t signature_bytes = 0;
};

gnutls_datum_t datum(std::string_view s) {
    return {reinterpret_cast<unsigned char*>(const_cast<char*>(s.data())),
            static_cast<unsigned>(s.size())};
}

std::string json_quoted(std::string_view s) {
    // Through the JSON encoder: the value may hold anything, the message stays one line.
    return json(std::string(s)).dump(-1, ' ', false, json::error_handler_t::replace);
}

std::optional<std::string> optional_string(const json& key, const char* name) {
    auto it = key.find(name);
    if (it == key.end()) return std::nullopt;
    if (!it->is_string()) throw BadKey(std::string("\"") + name + "\" is not a string");
    return it->get<std::string>();
}

std::string bytes_member(const json& key, const char* name) {
    auto s = optional_string(key, name);
    if (!s) throw BadKey(std::string("no \"") + name + "\"");
    auto bytes = from_base64url(*s);
    if (!bytes)
        throw BadKey(std::string("\"") + name + "\" is not base64url (RFC 4648 5, no padding)");
    return std::move(*bytes);
}

// RFC 7517 lets a key carry "alg" and "use"/"key_ops": limits we honour by skipping the key
// when they rule out verifying with `algorithm`.
void check_purpose(const json& key, JwkType type, const char* algorithm) {
    if (auto it = key.find("key_ops"); it != key.end()) {
        if (!it->is_array()) throw BadKey("\"key_ops\" is not an array");
        bool verify = false;
        for (const auto& op : *it) {
            if (!op.is_string()) throw BadKey("\"key_ops\" holds a non-string");
            verify = verify || op == "verify";
        }
        if (!verify) throw Skip{"key_ops has no \"verify\""};
    }
    if (auto use = optional_string(key, "use"); use && *use != "sig")
        throw Skip{"use is " + json_quoted(*use)};
    if (auto alg = optional_string(key, "alg"); alg && *alg != algorithm) {
        if (*alg == "HS256" || *alg == "RS256" || *alg == "ES256")
            throw BadKey(std::string("alg is ") + json_quoted(*alg) + ", but a key of type " +
                         to_string(type) + " can only verify " + algorithm);
        throw Skip{"alg " + json_quoted(*alg) + " is not supported"};
    }
}

std::size_t bit_length(std::string_view big_endian) {
    while (!big_endian.empty() && big_endian.front() == '\0')
        big_endian.remove_prefix(1);
    if (big_endian.empty()) return 0;
    unsigned top = static_cast<unsigned char>(big_endian.front());
    std::size_t bits = (big_endian.size() - 1) * 8;
    for (; top; top >>= 1)
        ++bits;
    return bits;
}

void read_rsa(const json& key, KeyParts& out) {
    std::string n = bytes_member(key, "n"), e = bytes_member(key, "e");
    std::size_t bits = bit_length(n);
    if (bits < kMinRsaBits || bits > kMaxRsaBits)
        throw BadKey("\"n\" has " + std::to_string(bits) + " bits; RS256 keys have " +
                     std::to_string(kMinRsaBits) + " to " + std::to_string(kMaxRsaBits));
    std::size_t e_bits = bit_length(e);
    if (e_bits < 2 || e_bits > bits || (static_cast<unsigned char>(e.back()) & 1) == 0)
        throw BadKey("\"e\" is not an odd public exponent of at least 3");
    out.pub = std::make_unique<Pubkey>();
    gnutls_datum_t m = datum(n), ex = datum(e);
    if (int rc = gnutls_pubkey_import_rsa_raw(out.pub->key, &m, &ex); rc < 0)
        throw BadKey(std::string("GnuTLS refuses the key: ") + gnutls_strerror(rc));
    out.signature_bytes = (bits + 7) / 8;
}

void read_ec(const json& key, KeyParts& out) {
    std::string x = bytes_member(key, "x"), y = bytes_member(key, "y");
    for (auto [name, value] : {std::pair{"x", &x}, std::pair{"y", &y}})
        if (value->size() != kEcCoordinateBytes)
            throw BadKey(std::string("\"") + name + "\" is " + std::to_string(value->size()) +
                         " bytes; P-256 coordinates are 32 (RFC 7518 6.2.1.2)");
    out.pub = std::make_unique<Pubkey>();
    gnutls_datum_t dx = datum(x), dy = datum(y);
    if (int rc = gnutls_pubkey_import_ecc_raw(out.pub->key, GNUTLS_ECC_CURVE_SECP256R1, &dx, &dy);
        rc < 0)
        throw BadKey(std::string("GnuTLS refuses the key: ") + gnutls_strerror(rc));
    // Importing does not check the point; a point off the curve is a corrupted key.
    if (gnutls_pubkey_verify_params(out.pub->key) < 0)
        throw BadKey("(x, y) is not a point on P-256");
    out.signature_bytes = 2 * kEcCoordinateBytes;
}

KeyParts read_key(const json& key) {
    if (!key.is_object()) throw BadKey("not a JSON object");
    KeyParts out;
    out.kid = optional_string(key, "kid");
    auto kty = optional_string(key, "kty");
    if (!kty) throw BadKey("no \"kty\"");
    if (*kty == "oct") {
        out.type = JwkType::oct;
    } else if (*kty == "RSA") {
        out.type = JwkType::rsa;
    } else if (*kty == "EC") {
        auto crv = optional_string(key, "crv");
        if (!crv) throw BadKey("EC key without \"crv\"");
        if (*crv != "P-256") throw Skip{"curve " + json_quoted(*crv) + " is not supported"};
        out.type = JwkType::ec_p256;
    } else {
        throw Skip{"kty " + json_quoted(*kty) + " is not supported"};
    }
    static constexpr const char* algorithms[] = {"HS256", "RS256", "ES256"};
    check_purpose(key, out.type, algorithms[static_cast<int>(out.type)]);
    switch (out.type) {
    case JwkType::oct:
        out.secret = bytes_member(key, "k");
        if (out.secret.size() < kMinHmacKeyBytes)
            throw BadKey("\"k\" is " + std::to_string(out.secret.size()) +
                         " bytes; HS256 keys have at least 32 (RFC 7518 3.2)");
        break;
    case JwkType::rsa:
        read_rsa(key, out);
        break;
    case JwkType::ec_p256:
        read_ec(key, out);
        break;
    }
    return out;
}

// "keys[2]" or "keys[2] (kid "a")", to say which key a message is about.
std::string key_label(const json& keys, std::size_t i) {
    std::string label = "keys[" + std::to_string(i) + "]";
    const json& key = keys[i];
    if (key.is_object())
        if (auto it = key.find("kid"); it != key.end() && it->is_string())
            label += " (kid " + json_quoted(it->get_ref<const std::string&>()) + ")";
    return label;
}

} // namespace

const char* to_string(JwkType t) {
    switch (t) {
    case JwkType::oct:
        return "oct";
    case JwkType::rsa:
        return "RSA";
    case JwkType::ec_p256:
        return "EC P-256";
    }
    return "?";
}

void Jwk::PubkeyFree::operator()(gnutls_pubkey_st* key) const noexcept {
    gnutls_pubkey_deinit(key);
}

Jwk::Jwk(Jwk&& other) noexcept = default;

Jwk& Jwk::operator=(Jwk&& other) noexcept {
    if (this != &other) {
        sodium_memzero(secret_.data(), secret_.size());
        type_ = other.type_;
        kid_ = std::move(other.kid_);
        secret_ = std::move(other.secret_);
        pub_ = std::move(other.pub_);
        signature_bytes_ = other.signature_bytes_;
    }
    return *this;
}

Jwk::~Jwk() {
    sodium_memzero(secret_.data(), secret_.size());
}

std::string_view Jwk::algorithm() const noexcept {
    switch (type_) {
    case JwkType::oct:
        return "HS256";
    case JwkType::rsa:
        return "RS256";
    case JwkType::ec_p256:
        return "ES256";
    }
    return "";
}

bool Jwk::verify(std::string_view input, std::string_view signature) const noexcept {
    if (input.size() > UINT_MAX) return false;
    switch (type_) {
    case JwkType::oct: {
        if (signature.size() != crypto_auth_hmacsha256_BYTES) return false;
        crypto_auth_hmacsha256_state state;
        unsigned char mac[crypto_auth_hmacsha256_BYTES];
        crypto_auth_hmacsha256_init(&state, reinterpret_cast<const unsigned char*>(secret_.data()),
                                    secret_.size());
        crypto_auth_hmacsha256_update(&state, reinterpret_cast<const unsigned char*>(input.data()),
                                      input.size());
        crypto_auth_hmacsha256_final(&state, mac);
        bool same =
            crypto_verify_32(mac, reinterpret_cast<const unsigned char*>(signature.data())) == 0;
        sodium_memzero(&state, sizeof state);
        return same;
    }
    case JwkType::rsa: {
        // RFC 8017 8.2.2: the signature is exactly as long as the modulus.
        if (!pub_ || signature.size() != signature_bytes_) return false;
        gnutls_datum_t data = datum(input), sig = datum(signature);
        return gnutls_pubkey_verify_data2(pub_.get(), GNUTLS_SIGN_RSA_SHA256, 0, &data, &sig) >= 0;
    }
    case JwkType::ec_p256: {
        // JWS carries r || s (RFC 7518 3.4); GnuTLS wants the DER SEQUENCE of two INTEGERs.
        // Leading zero bytes go first so that the INTEGERs are minimal.
        if (!pub_ || signature.size() != signature_bytes_) return false;
        auto minimal = [](std::string_view v) {
            while (v.size() > 1 && v.front() == '\0')
                v.remove_prefix(1);
            return v;
        };
        gnutls_datum_t r = datum(minimal(signature.substr(0, kEcCoordinateBytes)));
        gnutls_datum_t s = datum(minimal(signature.substr(kEcCoordinateBytes)));
        gnutls_datum_t der{};
        if (gnutls_encode_rs_value(&der, &r, &s) < 0) return false;
        gnutls_datum_t data = datum(input);
        bool ok =
            gnutls_pubkey_verify_data2(pub_.get(), GNUTLS_SIGN_ECDSA_SHA256, 0, &data, &der) >= 0;
        gnutls_free(der.data);
        return ok;
    }
    }
    return false;
}

Jwks Jwks::parse(std::string_view text) {
    if (sodium_init() < 0) throw std::runtime_error("libsodium cannot initialise");
    json doc;
    try {
        doc = json::parse(text);
    } catch (const json::exception& e) {
        // parse_error, or out_of_range for a number too large for a double.
        throw std::invalid_argument(std::string("not JSON: ") + e.what());
    }
    if (!doc.is_object() || !doc.contains("keys") || !doc["keys"].is_array())
        throw std::invalid_argument("not a JWK Set: no \"keys\" array (RFC 7517 5)");
    const json& keys = doc["keys"];
    Jwks set;
    for (std::size_t i = 0; i < keys.size(); ++i) {
        KeyParts parts;
        try {
            parts = read_key(keys[i]);
        } catch (const BadKey& e) {
            throw std::invalid_argument(key_label(keys, i) + ": " + e.what());
        } catch (const Skip& s) {
            set.ignored_.push_back(key_label(keys, i) + ": ignored: " + s.why);
            continue;
        }
        Jwk k;
        k.type_ = parts.type;
        k.kid_ = std::move(parts.kid);
        k.secret_ = std::move(parts.secret);
        if (parts.pub) k.pub_.reset(parts.pub->release());
        k.signature_bytes_ = parts.signature_bytes;
        set.keys_.push_back(std::move(k));
    }
    if (set.keys_.empty()) {
        std::string msg = "no usable key (HS256 oct, RS256 RSA or ES256 EC P-256 keys for "
                          "signatures) among " +
                          std::to_string(keys.size()) + " keys";
        for (const auto& why : set.ignored_)
            msg += "; " + why;
        throw std::invalid_argument(msg);
    }
    return set;
}

Jwks Jwks::from_file(const std::filesystem::path& file) {
    std::ifstream in(file, std::ios::binary);
    if (!in) throw std::runtime_error(file.string() + ": cannot read the JWK Set");
    std::string text(kMaxFileBytes + 1, '\0');
    in.read(text.data(), static_cast<std::streamsize>(text.size()));
    if (in.bad()) throw std::runtime_error(file.string() + ": cannot read the JWK Set");
    text.resize(static_cast<std::size_t>(in.gcount()));
    if (text.size() > kMaxFileBytes)
        throw std::runtime_error(file.string() + ": a JWK Set is at most 1 MiB");
    try {
        return parse(text);
    } catch (const std::invalid_argument& e) {
        throw std::runtime_error(file.string() + ": " + e.what());
    }
}

} // namespace strata::auth
