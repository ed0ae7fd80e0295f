"""The names of a WACZ's members (WACZ 1.1.1 and our own evidence files), once."""

DATAPACKAGE = "datapackage.json"
DIGEST = "datapackage-digest.json"            # the root: the hash of DATAPACKAGE, signed
INDEX = "indexes/index.cdx.gz"                # the CDXJ index in gzip blocks (ZipNum)
IDX = "indexes/index.idx"                     # its block index (ReplayWeb.page needs it)
PAGES = "pages/pages.jsonl"
EXTRA_PAGES = "pages/extraPages.jsonl"
PAGE_LISTS = (PAGES, EXTRA_PAGES)
CAPTURE = "evidence/capture.json"             # the capture's self-description (claims.py)
WARC_DIR = "archive"                          # WARC files: archive/<name>.warc.gz
WARC_PREFIX = WARC_DIR + "/"
DIGEST_FILES = (DATAPACKAGE, DIGEST)
INDEX_DIR = "indexes/"
PAGES_DIR = "pages/"
CDX_SUFFIXES = (".cdx", ".cdx.gz", ".cdxj", ".cdxj.gz")


def is_cdx_index(name: str) -> bool:
    """A CDX(J) index member (plain or gzipped), as WACZ readers pick them up."""
    return name.startswith(INDEX_DIR) and name.endswith(CDX_SUFFIXES)


def is_block_index(name: str) -> bool:
    """A ZipNum block index (`.idx`) member."""
    return name.startswith(INDEX_DIR) and name.endswith(".idx")


def is_warc(name: str) -> bool:
    """A WARC file of the capture (`archive/*.warc` or `archive/*.warc.gz`)."""
    return name.startswith(WARC_PREFIX) and name.endswith((".warc", ".warc.gz"))
