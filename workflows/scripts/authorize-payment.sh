#!/bin/sh
# Tool `authorize_payment`: the call's arguments arrive as JSON on stdin,
# e.g. {"order_id": "ORD-1001", "amount": 129.90, "currency": "USD"}. Prints the authorization
# as JSON; exits 1 when the card declines (amounts above 5000).
set -eu
args=$(cat)
field() {
  printf '%s' "$args" | sed -n "s/.*\"$1\"[[:space:]]*:[[:space:]]*\"\{0,1\}\([^\",}]*\).*/\1/p"
}
order=$(field order_id)
amount=$(field amount)
currency=$(field currency)
case "$amount" in
  ''|*[!0-9.]*) echo "amount must be a number, got '$amount'" >&2; exit 2 ;;
esac
whole="${amount%%.*}"
if [ "${whole:-0}" -gt 5000 ]; then
  echo "payment of $amount $currency for $order declined: over the card limit" >&2
  exit 1
fi
printf '{"approved": true, "order_id": "%s", "amount": %s, "currency": "%s", "authorization": "AUTH-%s"}\n' \
  "$order" "$amount" "${currency:-USD}" "$order"
