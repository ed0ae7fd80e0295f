"""A yt-dlp plugin extractor for tests only (tests/test_secret_values.py puts this folder
on PYTHONPATH): for a post of the test site on 127.0.0.1 it does what yt-dlp's own
TwitterIE does on x.com (yt_dlp/extractor/twitter.py, `_call_api`): it sends the session's
`ct0` cookie value in an `x-csrf-token` header of its API call, then names the video file
the API's answer leads to."""

from yt_dlp.extractor.common import InfoExtractor


class CopiesCookieIE(InfoExtractor):
    _VALID_URL = r'http://127\.0\.0\.1:\d+/watch/(?P<id>\d+)$'
    IE_NAME = 'copiescookie'

    def _real_extract(self, url):
        video_id = self._match_id(url)
        base = url.split('/watch/')[0]
        ct0 = self._get_cookies(base + '/').get('ct0')
        self._download_json(f'{base}/api/video/{video_id}', video_id, headers={
            'x-csrf-token': ct0.value if ct0 else '', 'x-twitter-auth-type': 'OAuth2Session'})
        return {'id': video_id, 'title': f'post {video_id}', 'url': f'{base}/files/{video_id}.mp4',
                'ext': 'mp4'}
