"""Serves the built page and records what it POSTs to /result.

The device machine has Python but no Node, so the benchmark's server is
this; the page itself is TypeScript (src/main.ts).

    python3 serve.py PAGE_DIR RESULTS_JSONL [PORT]
"""
import http.server
import json
import sys
from functools import partial
from urllib.parse import parse_qs, urlparse

page_dir, results_path = sys.argv[1], sys.argv[2]
port = int(sys.argv[3]) if len(sys.argv) > 3 else 8000


class Handler(http.server.SimpleHTTPRequestHandler):
    def do_POST(self) -> None:
        url = urlparse(self.path)
        if url.path != "/result":
            self.send_error(404)
            return
        body = self.rfile.read(int(self.headers.get("content-length", "0")))
        label = parse_qs(url.query).get("label", ["run"])[0]
        try:
            result = json.loads(body)
        except json.JSONDecodeError as e:
            result = {"label": label, "ok": False, "error": f"bad JSON from page: {e}"}
        with open(results_path, "a", encoding="utf-8") as f:
            f.write(json.dumps(result) + "\n")
        # A marker per label, which run-chromium.sh waits for.
        with open(f"{results_path}.{label}.done", "w", encoding="utf-8") as f:
            f.write("1")
        self.send_response(204)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


http.server.ThreadingHTTPServer(("127.0.0.1", port), partial(Handler, directory=page_dir)).serve_forever()
