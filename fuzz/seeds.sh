#!/usr/bin/env bash
# Seeds for the fuzz targets: the fixtures and the corpora (PDF), the test PKI (DER).
set -euo pipefail
cd "$(dirname "$0")"
mkdir -p seeds/pdf seeds/der
cp ../certs-test/pdf/*.pdf seeds/pdf/
if [ -d ../../shared/corpus ]; then
    find ../../shared/corpus -name '*.pdf' -size -2M -exec cp {} seeds/pdf/ \;
fi
for f in ../certs-test/pki/*.pem; do
    openssl x509 -in "$f" -outform DER -out "seeds/der/$(basename "$f" .pem).der" 2>/dev/null || true
done
cp ../certs-test/crl/*.crl seeds/der/ 2>/dev/null || true
