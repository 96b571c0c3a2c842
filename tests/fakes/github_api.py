"""A small fake of the GitHub REST API: the issue and issue-comment endpoints PyGithub calls,
and `POST /repos/{owner}/{repo}/dispatches` (repository_dispatch: 204 with no body; 422 when
`event_type` is missing or over 100 characters, or `client_payload` has more than 10
top-level properties, as GitHub's docs state; each accepted event is in `dispatches`).

Tokens decide rights, as on GitHub: a write token may create and edit comments; a read-only
token (what a fork's pull request gets) is answered 403 "Resource not accessible by
integration".
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

WRITE_TOKEN = "ghs_write_token_for_tests_0123456789"
READ_TOKEN = "ghs_read_only_token_for_tests_98765"


@dataclass
class FakeGitHub:
    comments: dict[int, dict[str, Any]] = field(default_factory=dict)
    issues: dict[int, dict[str, Any]] = field(default_factory=dict)  # opened through the API
    dispatches: list[dict[str, Any]] = field(default_factory=list)  # repository_dispatch events
    requests: list[tuple[str, str]] = field(default_factory=list)
    next_id: int = 1000
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> FakeGitHub:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                return

            def _send(self, status: int, body: Any) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _token(self) -> str:
                return (
                    self.headers.get("Authorization", "")
                    .removeprefix("token ")
                    .removeprefix("Bearer ")
                )

            def _body(self) -> dict[str, Any]:
                length = int(self.headers.get("Content-Length") or 0)
                loaded = json.loads(self.rfile.read(length) or b"{}")
                return loaded if isinstance(loaded, dict) else {}

            def _route(self, method: str) -> None:
                path = self.path.split("?", 1)[0]
                fake.requests.append((method, path))
                token = self._token()
                if token not in (WRITE_TOKEN, READ_TOKEN):
                    self._send(401, {"message": "Bad credentials"})
                    return
                if method in ("POST", "PATCH") and token != WRITE_TOKEN:
                    self._send(403, {"message": "Resource not accessible by integration"})
                    return
                if (m := re.fullmatch(r"/repos/([^/]+)/([^/]+)/dispatches", path)) and method == (
                    "POST"
                ):
                    body = self._body()
                    event, payload = body.get("event_type"), body.get("client_payload") or {}
                    if not isinstance(event, str) or not 1 <= len(event) <= 100:
                        self._send(422, {"message": "Invalid request: event_type"})
                        return
                    if not isinstance(payload, dict) or len(payload) > 10:
                        count = len(payload) if isinstance(payload, dict) else "?"
                        self._send(
                            422,
                            {
                                "message": "Invalid request.\n\nNo more than 10 properties "
                                f"are allowed; {count} were supplied."
                            },
                        )
                        return
                    fake.dispatches.append(
                        {"repository": f"{m[1]}/{m[2]}", "event_type": event, "payload": payload}
                    )
                    self.send_response(204)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                elif m := re.fullmatch(r"/repos/([^/]+)/([^/]+)/issues", path):
                    owner, repo = m.groups()
                    if method == "GET":
                        self._send(200, [i for i in fake.issues.values() if i["state"] == "open"])
                        return
                    new = fake.next_id
                    fake.next_id += 1
                    base = f"{fake.url}/repos/{owner}/{repo}/issues/{new}"
                    body = self._body()
                    fake.issues[new] = {
                        "number": new,
                        "title": body["title"],
                        "body": body.get("body", ""),
                        "state": "open",
                        "url": base,
                        "comments_url": f"{base}/comments",
                        "html_url": f"https://github.test/{owner}/{repo}/issues/{new}",
                        "user": {"login": "github-actions[bot]", "type": "Bot"},
                        "pull_request": None,
                    }
                    self._send(201, fake.issues[new])
                elif (m := re.fullmatch(r"/repos/([^/]+)/([^/]+)/issues/(\d+)", path)) and int(
                    m.group(3)
                ) in fake.issues:
                    issue = fake.issues[int(m.group(3))]
                    if method == "PATCH":
                        issue.update(self._body())
                    self._send(200, issue)
                elif m := re.fullmatch(r"/repos/([^/]+)/([^/]+)/issues/(\d+)", path):
                    owner, repo, number = m.groups()
                    base = f"{fake.url}/repos/{owner}/{repo}/issues/{number}"
                    self._send(
                        200,
                        {
                            "number": int(number),
                            "url": base,
                            "comments_url": f"{base}/comments",
                            "state": "open",
                        },
                    )
                elif m := re.fullmatch(r"/repos/([^/]+)/([^/]+)/issues/(\d+)/comments", path):
                    owner, repo, number = m.groups()
                    if method == "GET":
                        self._send(
                            200, [c for c in fake.comments.values() if c["issue"] == int(number)]
                        )
                        return
                    cid = fake.next_id
                    fake.next_id += 1
                    fake.comments[cid] = {
                        "id": cid,
                        "issue": int(number),
                        "body": self._body()["body"],
                        "url": f"{fake.url}/repos/{owner}/{repo}/issues/comments/{cid}",
                        "html_url": f"https://github.test/{owner}/{repo}/pull/{number}"
                        f"#issuecomment-{cid}",
                        "user": {"login": "github-actions[bot]", "type": "Bot"},
                    }
                    self._send(201, fake.comments[cid])
                elif m := re.fullmatch(r"/repos/[^/]+/[^/]+/issues/comments/(\d+)", path):
                    cid = int(m.group(1))
                    if cid not in fake.comments:
                        self._send(404, {"message": "Not Found"})
                        return
                    fake.comments[cid]["body"] = self._body()["body"]
                    self._send(200, fake.comments[cid])
                else:
                    self._send(404, {"message": "Not Found"})

            def do_GET(self) -> None:
                self._route("GET")

            def do_POST(self) -> None:
                self._route("POST")

            def do_PATCH(self) -> None:
                self._route("PATCH")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
