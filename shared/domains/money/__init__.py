"""Money rules: what an installment costs on a given date (see :mod:`.fees`)."""
