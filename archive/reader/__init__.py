"""Reading captures without trusting them: where the bytes come from (file or store), the
one scan, records and payloads out of a WACZ. verify/, diff, the catalog and the web app read
through it."""
