"""The payment page debtors open from a message (``/pagar/<token>``)."""
