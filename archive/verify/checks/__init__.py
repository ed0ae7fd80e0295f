"""Verification of a WACZ, a bare WARC or any file against a published hash.

run.py holds the entry points and feeds one read of the file to the checks, one module
per family: files.py (the zip, datapackage.json, the pages list), records.py (record
digests, revisits, the index), seal.py (digest file, signature, timestamps, the capture's
id), summary.py (what the report says the capture holds); gather.py is what the read
collects for them.
"""

from archive.verify.checks.run import Progress, add_late_check, verify_path, verify_source

__all__ = ["Progress", "add_late_check", "verify_path", "verify_source"]
