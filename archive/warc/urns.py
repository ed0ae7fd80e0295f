"""The URIs of the records a capture writes about itself (not fetched from the web): a
page's screenshot and rendered DOM, a media item and its thumbnail and subtitles. Each
is this prefix followed by the page URL (and, for media, `#<n>`)."""

SCREENSHOT = "urn:screenshot:"
DOM = "urn:dom:"
MEDIA = "urn:media:"
THUMBNAIL = "urn:media-thumbnail:"
SUBTITLES = "urn:media-subtitles:"

# a media item's own records: its file, thumbnail and subtitles
MEDIA_KINDS = (MEDIA, THUMBNAIL, SUBTITLES)


def of_media(uri: str | None) -> bool:
    """Whether `uri` names a record of a media item (its file, thumbnail, subtitles)."""
    return bool(uri) and uri.startswith(MEDIA_KINDS)
