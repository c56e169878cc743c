#!/bin/sh
# benches/peers.sh: kyso against its peers on the same files, in one run.
#
#   sh benches/peers.sh
#
# Times, as processes (hyperfine, warm cache): `kyso verify`, poppler's `pdfsig` and one
# `openssl dgst -sha256` (the hashing floor) on the ~100 KB and the ~20 MB two-signature
# documents; and pyHanko's verifier kept resident (loaded once, see peers_pyhanko.py).
# Prints each mean and kyso's ratio to each peer. Needs hyperfine and poppler-utils
# (Debian's packages) and `pip install pyhanko pyhanko-cli`; a peer that is missing is
# skipped with a message.
set -eu
cd "$(dirname "$0")/.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

command -v hyperfine >/dev/null || { echo "peers: hyperfine is missing (apt-get install hyperfine)"; exit 1; }
cargo build --release --quiet --bin kyso --example make-fixtures
kyso=target/release/kyso
pki=certs-test/pki
target/release/examples/make-fixtures --sized 100000 "$work/100k.pdf"
target/release/examples/make-fixtures --sized 20000000 "$work/20m.pdf"

# The mean of hyperfine's one command, in milliseconds (its exit status not judged: pdfsig
# exits non-zero for signatures it does not trust, and the test root is not in NSS).
mean() {
    hyperfine -N -i --warmup 3 --runs "$1" --export-json "$work/h.json" "$2" >/dev/null 2>&1 \
        || { echo "-"; return; }
    python3 -c "import json,sys; print('%.2f' % (json.load(open(sys.argv[1]))['results'][0]['mean']*1000))" "$work/h.json"
}

ratio() {
    python3 -c "import sys; a,b=sys.argv[1],sys.argv[2]; print('-' if '-' in (a,b) else '%.2f×' % (float(a)/float(b)))" "$1" "$2"
}

for file in 100k 20m; do
    pdf="$work/$file.pdf"
    runs=40
    [ "$file" = 20m ] && runs=15
    verify="$kyso verify --revocation offline --trust $pki/root-ca.pem --intermediates $pki/party-ca.pem --format json $pdf"
    $verify | grep -q '"verdict":"VALID"' || { echo "peers: kyso does not find $file valid"; exit 1; }
    k=$(mean $runs "$verify")
    if command -v pdfsig >/dev/null; then
        p=$(mean $runs "pdfsig $pdf")
    else
        echo "peers: pdfsig is missing (apt-get install poppler-utils)"
        p=-
    fi
    o=$(mean $runs "openssl dgst -sha256 $pdf")
    if python3 -c "import pyhanko" 2>/dev/null; then
        y=$(python3 benches/peers_pyhanko.py "$pdf" "$runs" $pki/root-ca.pem $pki/party-ca.pem)
    else
        echo "peers: pyHanko is missing (pip install pyhanko pyhanko-cli)"
        y=-
    fi
    size=$(wc -c < "$pdf")
    echo "$file ($size bytes): kyso verify $k ms; pdfsig $p ms (kyso $(ratio "$k" "$p")); openssl dgst -sha256 $o ms (kyso $(ratio "$k" "$o")); pyHanko resident $y ms per file (kyso as a process $(ratio "$k" "$y"))"
done
