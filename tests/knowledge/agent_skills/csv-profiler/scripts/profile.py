"""Print a one-line profile of every column of a CSV file."""
import csv
import sys
from collections import Counter

with open(sys.argv[1], newline="") as handle:
    rows = list(csv.DictReader(handle))
for column in rows[0] if rows else []:
    values = [row[column] for row in rows]
    missing = sum(1 for v in values if v in ("", "NA", "nan"))
    top, count = Counter(values).most_common(1)[0]
    print(f"{column}: {missing / len(values):.1%} missing, {len(set(values))} distinct, top {top!r} ({count})")
