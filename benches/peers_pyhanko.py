"""pyHanko's verifier kept resident: loads once, then verifies FILE RUNS times.

Prints the mean milliseconds per verification of all its signatures. Used by
benches/peers.sh; needs `pip install pyhanko pyhanko-cli`.
"""
import sys
import time

from pyhanko.keys import load_cert_from_pemder
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.validation import validate_pdf_signature
from pyhanko_certvalidator import ValidationContext


def main():
    path, runs, root, intermediate = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
    context = ValidationContext(
        trust_roots=[load_cert_from_pemder(root)],
        other_certs=[load_cert_from_pemder(intermediate)],
        allow_fetching=False,
        revocation_mode="soft-fail",
    )

    refusals = set()

    def once():
        with open(path, "rb") as f:
            reader = PdfFileReader(f)
            for signature in reader.embedded_signatures:
                # What pyHanko refuses is still work done; the refusal is told once.
                try:
                    status = validate_pdf_signature(signature, context)
                    if not status.intact:
                        refusals.add("a signature not intact")
                except Exception as e:  # noqa: BLE001 - any refusal of pyHanko's
                    refusals.add(f"{type(e).__name__}: {e}")

    once()
    for r in sorted(refusals):
        print(f"peers: pyHanko on {path}: {r}", file=sys.stderr)
    start = time.perf_counter()
    for _ in range(runs):
        once()
    print(f"{(time.perf_counter() - start) * 1000 / runs:.3f}")


main()
