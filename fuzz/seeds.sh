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
# Raw HTTP requests for http_requests: the API's routes, a document posted both ways.
mkdir -p seeds/http
pdf=../certs-test/pdf/two-signatures.pdf
printf 'GET /healthz HTTP/1.1\r\nHost: kyso\r\n\r\n' > seeds/http/healthz
printf 'GET /api/v1/records?page_size=2&verdict=VALID&from=2026-01-01T00:00:00Z HTTP/1.1\r\nHost: kyso\r\n\r\n' > seeds/http/records
printf 'POST /api/v1/log/verify HTTP/1.1\r\nHost: kyso\r\nContent-Type: application/json\r\nContent-Length: 35\r\n\r\n{"from_sequence":1,"to_sequence":0}' > seeds/http/log
{
    printf 'POST /api/v1/verify?document_number=1%%2FQD&lang=en&policy=none HTTP/1.1\r\nHost: kyso\r\nContent-Type: application/pdf\r\nContent-Length: %d\r\n\r\n' "$(stat -c %s "$pdf")"
    cat "$pdf"
} > seeds/http/verify
{
    body=$(mktemp)
    { printf -- '--b\r\nContent-Disposition: form-data; name="file"; filename="a.pdf"\r\n\r\n'; cat "$pdf"; printf -- '\r\n--b--\r\n'; } > "$body"
    printf 'POST /api/v1/signatures/2/signed-version HTTP/1.1\r\nHost: kyso\r\nContent-Type: multipart/form-data; boundary=b\r\nContent-Length: %d\r\n\r\n' "$(stat -c %s "$body")"
    cat "$body"
    rm -f "$body"
}  > seeds/http/multipart
