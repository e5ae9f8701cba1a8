#!/usr/bin/env bash
# Makes what a secured job needs, with openssl: a test CA, one certificate
# for every task (server and client use, so the same files serve mutual TLS),
# and a random token.
#
#   deploy/tls/make_certs.sh OUT_DIR HOST [HOST ...]
#
# OUT_DIR gets ca.pem, ca.key, tls.crt, tls.key and token (keys and token
# readable by their owner only). The certificate names every HOST (as DNS
# names, or IP addresses where they are ones), plus localhost and 127.0.0.1.
# Give the tasks:
#   --tls_cert=OUT_DIR/tls.crt --tls_key=OUT_DIR/tls.key --tls_ca=OUT_DIR/ca.pem
#   --auth_token_file=OUT_DIR/token
# For production, use your own CA and one certificate per host; this script
# is for tests and first trials. DAYS (default 30) sets the validity.
set -euo pipefail
if [ $# -lt 2 ]; then
  echo "usage: $0 OUT_DIR HOST [HOST ...]" >&2
  exit 2
fi
out="$1"
shift
days="${DAYS:-30}"
mkdir -p "$out"
umask 077

san="DNS:localhost,IP:127.0.0.1"
for h in "$@"; do
  if [[ "$h" =~ ^[0-9.]+$ || "$h" == *:* ]]; then san="$san,IP:$h"; else san="$san,DNS:$h"; fi
done

openssl req -x509 -newkey rsa:2048 -nodes -days "$days" -subj "/CN=deepfm test CA" \
  -keyout "$out/ca.key" -out "$out/ca.pem" \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
openssl req -newkey rsa:2048 -nodes -subj "/CN=deepfm task" -keyout "$out/tls.key" -out "$out/tls.csr" 2>/dev/null
cat > "$out/tls.ext" <<EXT
basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth,clientAuth
subjectAltName=$san
EXT
openssl x509 -req -in "$out/tls.csr" -CA "$out/ca.pem" -CAkey "$out/ca.key" -CAcreateserial \
  -days "$days" -extfile "$out/tls.ext" -out "$out/tls.crt" 2>/dev/null
rm -f "$out/tls.csr" "$out/tls.ext" "$out/ca.srl"
openssl rand -hex 32 > "$out/token"
chmod 644 "$out/ca.pem" "$out/tls.crt"
echo "make_certs: wrote $out/{ca.pem,ca.key,tls.crt,tls.key,token} for: $*"
