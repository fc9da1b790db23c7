"""A real HTTP server on 127.0.0.1 for download tests, and a TCP listener that must stay unused."""

from __future__ import annotations

import contextlib
import http.server
import re
import socketserver
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field


@dataclass
class Server:
    """What the test server serves and what it was asked."""

    base: str
    files: dict[str, bytes] = field(default_factory=dict)
    drop_first: set[str] = field(default_factory=set)  # paths whose first response is cut short
    always_fail: dict[str, int] = field(default_factory=dict)  # path -> HTTP status
    redirects: dict[str, str] = field(default_factory=dict)  # path -> Location, answered with 302
    no_length: set[str] = field(default_factory=set)  # paths sent without Content-Length
    requests: list[tuple[str, str | None]] = field(default_factory=list)  # (path, Range header)


def _handler(server: Server) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:  # keep pytest output clean
            pass

        def do_GET(self) -> None:
            range_header = self.headers.get("Range")
            server.requests.append((self.path, range_header))
            if self.path in server.redirects:
                self.send_response(302)
                self.send_header("Location", server.redirects[self.path])
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            if self.path in server.always_fail:
                self.send_error(server.always_fail[self.path])
                return
            body = server.files.get(self.path)
            if body is None:
                self.send_error(404)
                return
            if self.path in server.no_length:
                # HTTP/1.0 without a length: the body ends where the connection closes.
                self.send_response(200)
                self.end_headers()
                self.wfile.write(body)
                return
            start = 0
            if range_header:
                start = int(re.fullmatch(r"bytes=(\d+)-", range_header).group(1))
                if start >= len(body):
                    self.send_response(416)
                    self.send_header("Content-Range", f"bytes */{len(body)}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
            else:
                self.send_response(200)
            payload = body[start:]
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            if self.path in server.drop_first:
                # Promise the whole body, send part of it, then hang up.
                server.drop_first.discard(self.path)
                self.wfile.write(payload[: len(payload) // 3])
                self.wfile.flush()
                self.close_connection = True
                return
            self.wfile.write(payload)

    return Handler


@contextlib.contextmanager
def _serving(server: socketserver.BaseServer) -> Iterator[None]:
    """Serve from a daemon thread for the block, then shut down and close."""
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@contextlib.contextmanager
def http_server() -> Iterator[Server]:
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.BaseHTTPRequestHandler)
    state = Server(base=f"http://127.0.0.1:{httpd.server_address[1]}")
    httpd.RequestHandlerClass = _handler(state)
    with _serving(httpd):
        yield state


@dataclass
class Listener:
    """A TCP port on 127.0.0.1 that records every connection made to it (and hangs up)."""

    port: int
    connections: list[tuple[str, int]] = field(default_factory=list)


@contextlib.contextmanager
def tcp_listener() -> Iterator[Listener]:
    """Stands in for an FTP server: a client that reaches it shows up in `connections`."""
    state = Listener(port=0)

    class Record(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            state.connections.append(self.client_address)

    tcp = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Record)
    state.port = tcp.server_address[1]
    with _serving(tcp):
        yield state
