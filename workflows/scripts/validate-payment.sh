#!/bin/sh
# Authorises a payment. Prints JSON on stdout; exits 1 when the payment is declined.
# Usage: validate-payment.sh AMOUNT   (CURRENCY and ORDER_ID in the environment)
set -eu
amount="${1:?usage: validate-payment.sh AMOUNT}"
currency="${CURRENCY:-USD}"
order="${ORDER_ID:-unknown}"
case "$amount" in
  ''|*[!0-9.]*) echo "amount must be a number, got '$amount'" >&2; exit 2 ;;
esac
# Amounts above the card limit are declined.
whole="${amount%%.*}"
if [ "${whole:-0}" -gt 5000 ]; then
  echo "payment of $amount $currency for $order declined: over the card limit" >&2
  printf '{"approved": false, "amount": "%s", "currency": "%s"}\n' "$amount" "$currency"
  exit 1
fi
printf '{"approved": true, "amount": "%s", "currency": "%s", "authorization": "AUTH-%s"}\n' \
  "$amount" "$currency" "$order"
