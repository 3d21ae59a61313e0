"""One screen per file; each only renders what core reports."""
