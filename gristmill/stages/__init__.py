"""Built-in stages: filters, taggers, mixing and dedup; every module here registers its own."""
