#!/usr/bin/python3
"""metrics_parse.py -- GET a gateway's /metrics and parse it with the
Prometheus project's own text parser (prometheus_client, Debian's
python3-prometheus-client), for itest_metrics.

usage: metrics_parse.py URL [CAFILE]

An https URL is verified against CAFILE (the test's self-signed
certificate).

Prints one JSON object: content_type (the response's Content-Type),
families (name -> type, help, samples [{name, labels, value}]) as the
parser understood them, and type_lines (every "# TYPE" line's name ->
type, as written). Exit status 1 when the fetch or the parse fails (the
parser raises on anything malformed), with the reason on stderr.
"""
import json
import math
import ssl
import sys
import urllib.request

from prometheus_client.parser import text_string_to_metric_families


def main():
    url = sys.argv[1]
    context = ssl.create_default_context(cafile=sys.argv[2]) if len(sys.argv) > 2 else None
    try:
        with urllib.request.urlopen(url, timeout=5, context=context) as r:
            ctype = r.headers.get("Content-Type")
            text = r.read().decode("utf-8")
        families = {}
        for f in text_string_to_metric_families(text):
            families[f.name] = {
                "type": f.type,
                "help": f.documentation,
                "samples": [
                    {"name": s.name, "labels": s.labels,
                     "value": s.value if math.isfinite(s.value) else str(s.value)}
                    for s in f.samples
                ],
            }
    except Exception as e:  # the test prints why
        print("metrics_parse: %s: %s" % (url, e), file=sys.stderr)
        return 1
    type_lines = {}
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            parts = line.split(" ")
            type_lines[parts[2]] = parts[3] if len(parts) > 3 else ""
    print(json.dumps({"content_type": ctype, "families": families, "type_lines": type_lines}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
