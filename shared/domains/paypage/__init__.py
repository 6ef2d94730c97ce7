"""The payment page a debtor opens from a message: what is owed today and its Pix, or the
options of an offer to choose from."""
