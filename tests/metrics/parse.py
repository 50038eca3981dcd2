"""Parses Prometheus text from stdin with the reference Python parser (prometheus_client) and
prints one line per sample: `name{label="v",...} value`, labels sorted. Fails on bad text."""

import sys

from prometheus_client.parser import text_string_to_metric_families

for family in text_string_to_metric_families(sys.stdin.read()):
    for s in family.samples:
        labels = ",".join(f'{k}="{v}"' for k, v in sorted(s.labels.items()))
        print(f"{s.name}{{{labels}}} {s.value}")
