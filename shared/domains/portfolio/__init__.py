"""Portfolio: the retailer's customers (debtors), their installments and the payments that
settle them."""
