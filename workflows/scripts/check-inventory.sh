#!/bin/sh
# Tool `check_inventory`: the call's arguments arrive as JSON on stdin,
# e.g. {"sku": "SKU-4417", "quantity": 2}. Prints the stock level as JSON; exits 1 when the
# quantity cannot be reserved (the model is told, and decides what to say).
set -eu
args=$(cat)
sku=$(printf '%s' "$args" | sed -n 's/.*"sku"[[:space:]]*:[[:space:]]*"\([^"]*\)".*/\1/p')
quantity=$(printf '%s' "$args" | sed -n 's/.*"quantity"[[:space:]]*:[[:space:]]*\([0-9][0-9]*\).*/\1/p')
[ -n "$sku" ] || { echo "no sku in the arguments: $args" >&2; exit 2; }
[ -n "$quantity" ] || { echo "no quantity in the arguments: $args" >&2; exit 2; }
available=42
if [ "$quantity" -gt "$available" ]; then
  echo "only $available of $sku in stock, $quantity requested" >&2
  exit 1
fi
printf '{"sku": "%s", "available": %s, "reserved": %s, "in_stock": true}\n' \
  "$sku" "$available" "$quantity"
