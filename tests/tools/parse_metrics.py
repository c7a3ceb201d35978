"""Parses an OpenMetrics text scrape (stdin) with prometheus_client's
parser, the one Prometheus' Python client ships, and prints every sample as
JSON lines: {"name": ..., "labels": {...}, "value": ...}. Exits non-zero,
with the parser's message, when the scrape does not parse."""

import json
import sys

from prometheus_client.openmetrics.parser import text_string_to_metric_families

text = sys.stdin.read()
try:
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            print(json.dumps({"name": sample.name, "labels": sample.labels, "value": sample.value}))
except Exception as error:  # the parser raises ValueError and others
    print(f"scrape does not parse: {error}", file=sys.stderr)
    sys.exit(1)
