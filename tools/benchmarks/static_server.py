#!/usr/bin/env python3
"""Stand-in producers for tools/bench: serves each given file on its own port (HTTP/1.1,
keep-alive), whatever the path, so that the collector's cost is measured and not an encoder's.
  static_server.py PORTS_FILE BODY...   writes "host:port" per body to PORTS_FILE, then serves."""
import http.server
import socketserver
import sys
import threading


def serve(body, content_type):
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return "127.0.0.1:%d" % server.server_address[1]


def main():
    ports_file, paths = sys.argv[1], sys.argv[2:]
    addresses = []
    for path in paths:
        with open(path, "rb") as f:
            body = f.read()
        kind = "application/json" if path.endswith(".json") else "text/plain; version=0.0.4"
        addresses.append(serve(body, kind))
    with open(ports_file + ".tmp", "w") as f:
        f.write("\n".join(addresses) + "\n")
    import os
    os.rename(ports_file + ".tmp", ports_file)
    threading.Event().wait()


if __name__ == "__main__":
    main()
