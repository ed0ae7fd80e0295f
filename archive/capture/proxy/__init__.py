"""The recording proxy stack that browser capture and media capture send their traffic
through: the proxy itself (server), the capture's throwaway CA that lets it read HTTPS
(ca), and HTTP/1.1 framing read byte for byte (framing). Each finished exchange is handed
to a sink (ExchangeSink) as the same FetchResult the HTTP crawler's fetcher makes."""

from archive.capture.proxy.ca import InterceptionCA
from archive.capture.proxy.server import ExchangeSink, ProxyOptions, RecordingProxy, Refused

__all__ = ["ExchangeSink", "InterceptionCA", "ProxyOptions", "RecordingProxy", "Refused"]
