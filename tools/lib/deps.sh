# Sourced by tools/run and tools/test: installs the Debian packages Strata needs to build and
# test, when some are missing (apt-get update only then). Needs root for the install.

STRATA_BUILD_PACKAGES=(
    meson ninja-build pkg-config clang lld libclang-rt-14-dev g++ git
    libuv1-dev libmicrohttpd-dev liblmdb-dev libcriterion-dev libtomlplusplus-dev
    nlohmann-json3-dev libcurl4-openssl-dev libsodium-dev libgnutls28-dev libsystemd-dev libmagic-dev libclamav-dev libfmt-dev libssl-dev libhttp-parser-dev
    libicu-dev zlib1g-dev libbrotli-dev libgoogle-perftools-dev
    libbpf-dev libxdp-dev libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev
    gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad
    gstreamer1.0-plugins-ugly gstreamer1.0-libav
    scdoc groff-base man-db systemd python3 curl
)
# Only tools/test: the unit checks, the packages and the nspawn system suite.
STRATA_TEST_PACKAGES=(
    systemd-container debootstrap debhelper dpkg-dev fakeroot lintian iproute2 openssl
    gstreamer1.0-tools
)

strata_install_packages() {
    local missing=() p
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed$' ||
            missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    if [ "$(id -u)" -ne 0 ]; then
        echo "missing Debian packages: ${missing[*]} (run as root, or install them)" >&2
        return 1
    fi
    echo "installing: ${missing[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q >&2
    apt-get install -y -q --no-install-recommends "${missing[@]}" >&2
}

# Configures (once) and builds the tree with clang, so the libFuzzer targets build too.
strata_build() {
    local src=$1 build=$2
    if [ ! -f "$build/build.ninja" ]; then
        CC=clang CXX=clang++ meson setup "$build" "$src" >&2
    fi
    ninja -C "$build" >&2
}
