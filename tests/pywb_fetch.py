"""Run by pywb's own Python (scripts/install-pywb), in a folder holding its collections:
prints one JSON line per URL given, as pywb's WSGI app replays it from the collection
(status, body in base64). No server and no network: the app is called directly."""

import base64
import io
import json
import sys

from pywb.apps.frontendapp import FrontEndApp

app = FrontEndApp()
collection = sys.argv[1]
for url in sys.argv[2:]:
    environ = {
        "REQUEST_METHOD": "GET", "PATH_INFO": f"/{collection}/id_/{url}", "SCRIPT_NAME": "",
        "QUERY_STRING": "", "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "80", "HTTP_HOST": "127.0.0.1",
        "SERVER_PROTOCOL": "HTTP/1.1", "wsgi.url_scheme": "http", "wsgi.input": io.BytesIO(b""),
        "wsgi.errors": sys.stderr,
    }
    status = []
    body = b"".join(app(environ, lambda line, headers, exc_info=None: status.append(line)))
    print(json.dumps({"url": url, "status": status[0], "body": base64.b64encode(body).decode()}))
