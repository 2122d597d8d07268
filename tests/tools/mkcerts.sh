#!/usr/bin/env bash
# tests/tools/mkcerts.sh DIR: a throwaway PKI for the HTTPS tests and
# benchmarks, made with Debian's openssl (P-256 keys, valid for a day):
#   ca.pem/.key          the CA of the server and of the good client
#   other-ca.pem/.key    an unrelated CA (a client that trusts it is refused)
#   server.pem/.key      127.0.0.1, localhost and mnistd (the compose service), signed by ca (serverAuth)
#   server2.pem/.key     the same names, a new key: the rotated certificate
#   client.pem/.key      a client certificate signed by ca (clientAuth)
#   other-client.pem/.key  a client certificate signed by other-ca
#   expired.pem/.key     a server certificate signed by ca that expired in 2020
# Keys are made here at test time and never committed.
set -euo pipefail
dir=$1
mkdir -p "$dir"
cd "$dir"
umask 077

newkey() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1.key" 2>/dev/null; }

ca() {
  newkey "$1"
  openssl req -x509 -new -key "$1.key" -out "$1.pem" -days 2 -subj "/CN=mnistd test $1" \
    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
}

# leaf CA NAME EKU [openssl ca dates...]
leaf() {
  local ca=$1 name=$2 eku=$3; shift 3
  newkey "$name"
  openssl req -new -key "$name.key" -out "$name.csr" -subj "/CN=mnistd test $name" 2>/dev/null
  cat >"$name.ext" <<EXT
basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=$eku
subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:mnistd
EXT
  if [ $# -eq 0 ]; then
    openssl x509 -req -in "$name.csr" -CA "$ca.pem" -CAkey "$ca.key" -CAcreateserial -days 1 \
      -extfile "$name.ext" -out "$name.pem" 2>/dev/null
  else
    # openssl ca is the one that takes explicit dates
    mkdir -p "ca-db"; : >ca-db/index.txt; echo 1000 >ca-db/serial
    cat >ca-db/ca.cnf <<CNF
[ca]
default_ca = d
[d]
database = ca-db/index.txt
serial = ca-db/serial
new_certs_dir = ca-db
default_md = sha256
policy = p
copy_extensions = none
[p]
commonName = supplied
CNF
    openssl ca -batch -config ca-db/ca.cnf -cert "$ca.pem" -keyfile "$ca.key" -in "$name.csr" \
      -extfile "$name.ext" -out "$name.pem" -notext "$@" 2>/dev/null
  fi
  rm -f "$name.csr" "$name.ext"
}

ca ca
ca other-ca
leaf ca server serverAuth
leaf ca server2 serverAuth
leaf ca client clientAuth
leaf other-ca other-client clientAuth
leaf ca expired serverAuth -startdate 20200101000000Z -enddate 20200102000000Z
chmod 644 ./*.pem
