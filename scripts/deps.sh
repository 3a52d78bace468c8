# Shared by scripts/test.sh, scripts/demo.sh and bench/: the Debian packages
# mobilesync needs, installed only when missing, and the build itself.

MS_DEPS=(
  build-essential autoconf automake libtool pkg-config
  dovecot-core dovecot-imapd dovecot-lmtpd dovecot-dev
  libevent-dev libssl-dev openssl libsqlite3-dev
  libprotobuf-dev protobuf-compiler
  libgtest-dev libbenchmark-dev
  nlohmann-json3-dev python3-aiosmtpd
  clang libclang-rt-14-dev
  python3 procps
)

ms_sudo() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

ms_install_deps() {
  local missing=() p
  for p in "${MS_DEPS[@]}" "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "installing: ${missing[*]}"
  # Debian's dovecot-core postinst would start a system Dovecot; we only need
  # its binaries. policy-rc.d 101 keeps services from starting during install.
  local policy=/usr/sbin/policy-rc.d created=0
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | ms_sudo tee "$policy" >/dev/null
    ms_sudo chmod 755 "$policy"
    created=1
  fi
  ms_sudo apt-get update -q &&
    DEBIAN_FRONTEND=noninteractive ms_sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
  local rc=$?
  [ $created -eq 1 ] && ms_sudo rm -f "$policy"
  return $rc
}

# ms_localhost_certs DIR CA_NAME DAYS: DIR/ca.{pem,key} (a CA of its own) and
# DIR/server.{pem,key} for localhost and 127.0.0.1 signed by it; keys 0600.
# For throwaway instances on loopback (scripts/demo.sh, bench/run.sh).
ms_localhost_certs() {
  local d=$1 name=$2 days=$3
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days "$days" \
    -subj "/CN=$name" -keyout "$d/ca.key" -out "$d/ca.pem" 2>/dev/null &&
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=localhost \
      -keyout "$d/server.key" -out "$d/server.csr" 2>/dev/null &&
    printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' >"$d/san.ext" &&
    openssl x509 -req -in "$d/server.csr" -CA "$d/ca.pem" -CAkey "$d/ca.key" \
      -CAcreateserial -days "$days" -extfile "$d/san.ext" -out "$d/server.pem" 2>/dev/null &&
    chmod 600 "$d/ca.key" "$d/server.key"
}

# ms_build BUILD_DIR [configure args...]: autoreconf (once), configure (when
# the arguments changed), make (MS_BUILD_TESTS=0: without the test programs).
ms_build() {
  local build=$1; shift
  local top; top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
  if [ ! -x "$top/configure" ] || [ "$top/configure.ac" -nt "$top/configure" ]; then
    (cd "$top" && autoreconf -fi) || return 1
  fi
  mkdir -p "$build"
  local want="$*"
  if [ ! -f "$build/Makefile" ] || [ "$(cat "$build/.ms-configure-args" 2>/dev/null)" != "$want" ]; then
    (cd "$build" && "$top/configure" -q "$@") || return 1
    echo "$want" >"$build/.ms-configure-args"
  fi
  # Two invocations, not one: with BUILT_SOURCES, `all` runs a sub-make, and
  # building `test-programs` beside it in the same make would link the same
  # libtool targets twice at once.
  # MS_BUILD_TESTS=0: the programs only (bench/run.sh).
  make -C "$build" -j"$(nproc)" -s all || return 1
  [ "${MS_BUILD_TESTS:-1}" = 0 ] || make -C "$build" -j"$(nproc)" -s test-programs
}
