"""A local HTTP server on 127.0.0.1 standing in for the model hosts (and for a mirror, which
serves files by name): PAYLOAD at any path, with Range requests honoured."""
import http.server
import threading
import time
from contextlib import contextmanager

PAYLOAD = bytes(range(256)) * 1200                     # 307,200 bytes


class Handler(http.server.BaseHTTPRequestHandler):
    """Serves PAYLOAD at any path, honours Range; /cut sends a third of it then hangs up;
    /slow/... trickles it out over about 3 s; /hub/<sha256> redirects to /good as Hugging
    Face does, naming the file's SHA-256 and size."""

    ranges = []

    def do_GET(self):
        if self.path.startswith("/hub/"):
            self.send_response(302)
            self.send_header("Location", "/good")
            self.send_header("X-Linked-Etag", f'"{self.path[len("/hub/"):]}"')
            self.send_header("X-Linked-Size", str(len(PAYLOAD)))
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        start = 0
        if self.headers.get("Range"):
            start = int(self.headers["Range"].split("=")[1].split("-")[0])
            Handler.ranges.append(start)
        body = PAYLOAD[start:]
        self.send_response(206 if start else 200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.path == "/cut":
            self.wfile.write(body[: len(body) // 3])
            self.wfile.flush()
            self.connection.shutdown(2)
            return
        if self.path.startswith("/slow/"):
            for at in range(0, len(body), 10_000):
                self.wfile.write(body[at:at + 10_000])
                self.wfile.flush()
                time.sleep(0.1)
            return
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@contextmanager
def serving():
    """The server's base URL while the block runs."""
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
