"""Real HTTP servers on 127.0.0.1 for download and Hub tests (threaded, bounded, stopped by the fixture).

``FileServer`` serves byte blobs under paths with switchable misbehaviour (truncate, corrupt, HTML, stall,
no Range support). ``FakeHub`` answers the endpoints ``huggingface_hub.hf_hub_download`` uses and the
create-repo / preupload / commit endpoints ``HfApi.upload_folder`` uses for small regular files.
Header facts (from huggingface_hub ``file_download.get_hf_file_metadata`` and ``utils._http.hf_raise_for_status``):
the HEAD of ``/{repo}/resolve/{rev}/{file}`` must carry ``X-Repo-Commit``, an ``ETag`` (or ``X-Linked-Etag``)
and ``Content-Length``; 404s are classified by ``X-Error-Code`` (RepoNotFound, RevisionNotFound, EntryNotFound).
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote, urlsplit


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class _Base(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 20  # a stuck client can never hold a handler thread forever

    def log_message(self, *args: Any) -> None:  # keep test output clean
        pass

    def _send(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None,
              content_type: str = "application/octet-stream") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")  # no keep-alive: a stopped server really is gone
        self.close_connection = True
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)


class _Running:
    def __init__(self, handler: type[BaseHTTPRequestHandler]) -> None:
        self.httpd = _Server(("127.0.0.1", 0), handler)
        self.httpd.owner = self  # type: ignore[attr-defined]
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


# --- plain file server -------------------------------------------------------------------------------

@dataclass
class FileServer:
    """Serves ``files[path]``; ``mode`` selects misbehaviour; ``requests`` logs (method, path, range)."""

    files: dict[str, bytes] = field(default_factory=dict)
    mode: str = "ok"  # ok | truncate | corrupt | html | stall | norange
    stall_after: int = 0
    requests: list[tuple[str, str, str | None]] = field(default_factory=list)
    _running: _Running | None = None
    release: threading.Event = field(default_factory=threading.Event)

    def start(self) -> "FileServer":
        self._running = _Running(_FileHandler)
        self._running.httpd.files = self  # type: ignore[attr-defined]
        return self

    def stop(self) -> None:
        self.release.set()
        if self._running:
            self._running.stop()

    def url(self, path: str) -> str:
        assert self._running is not None
        return f"{self._running.url}/{path.lstrip('/')}"

    def gets(self, path: str | None = None) -> list[tuple[str, str, str | None]]:
        return [r for r in self.requests if r[0] == "GET" and (path is None or r[1] == "/" + path.lstrip("/"))]


class _FileHandler(_Base):
    def do_GET(self) -> None:  # noqa: N802 - http.server naming
        fs: FileServer = self.server.files  # type: ignore[attr-defined]
        path = urlsplit(self.path).path
        rng = self.headers.get("Range")
        fs.requests.append(("GET", path, rng))
        if path not in fs.files:
            self._send(404, b"not found", content_type="text/plain")
            return
        data = fs.files[path]
        if fs.mode == "html":
            self._send(200, b"<!DOCTYPE html><html><body>Please log in</body></html>", content_type="text/html")
            return
        if fs.mode == "corrupt":
            data = bytes(b ^ 0xFF if i == len(data) // 2 else b for i, b in enumerate(data))
        start = 0
        if rng and fs.mode != "norange" and rng.startswith("bytes=") and rng.endswith("-"):
            start = int(rng[len("bytes="):-1])
        if start >= len(data) > 0:
            self._send(416, b"range not satisfiable", {"Content-Range": f"bytes */{len(data)}"}, "text/plain")
            return
        body = data[start:]
        self.send_response(206 if start else 200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Connection", "close")
        self.close_connection = True
        if start:
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        self.end_headers()
        try:
            if fs.mode == "truncate":
                self.wfile.write(body[: len(body) // 2])
                self.wfile.flush()
                self.close_connection = True
                return
            if fs.mode == "stall":
                self.wfile.write(body[: fs.stall_after])
                self.wfile.flush()
                fs.release.wait(timeout=15)  # bounded: never outlives the test by much
                self.close_connection = True
                return
            for i in range(0, len(body), 1 << 16):
                self.wfile.write(body[i:i + (1 << 16)])
        except (BrokenPipeError, ConnectionResetError):
            pass


# --- fake Hugging Face Hub -----------------------------------------------------------------------------

@dataclass
class Repo:
    revisions: dict[str, str] = field(default_factory=dict)  # branch/tag -> commit sha
    commits: dict[str, dict[str, bytes]] = field(default_factory=dict)  # commit sha -> files
    private: bool = False


@dataclass
class FakeHub:
    repos: dict[str, Repo] = field(default_factory=dict)
    requests: list[tuple[str, str]] = field(default_factory=list)
    token: str | None = None  # when set, private repos need "Authorization: Bearer <token>"
    _running: _Running | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> "FakeHub":
        self._running = _Running(_HubHandler)
        self._running.httpd.hub = self  # type: ignore[attr-defined]
        return self

    def stop(self) -> None:
        if self._running:
            self._running.stop()

    @property
    def url(self) -> str:
        assert self._running is not None
        return self._running.url

    def add_commit(self, repo_id: str, files: dict[str, bytes], branch: str = "main") -> str:
        with self._lock:
            repo = self.repos.setdefault(repo_id, Repo())
            base = dict(repo.commits.get(repo.revisions.get(branch, ""), {}))
            base.update(files)
            sha = hashlib.sha1(repr((repo_id, sorted((k, hashlib.sha256(v).hexdigest()) for k, v in base.items()),
                                     len(repo.commits))).encode()).hexdigest()
            repo.commits[sha] = base
            repo.revisions[branch] = sha
            return sha


class _HubHandler(_Base):
    @property
    def hub(self) -> FakeHub:
        return self.server.hub  # type: ignore[attr-defined]

    def _error(self, status: int, code: str, commit: str | None = None) -> None:
        headers = {"X-Error-Code": code, "X-Error-Message": code}
        if commit:
            headers["X-Repo-Commit"] = commit
        self._send(status, json.dumps({"error": code}).encode(), headers, content_type="application/json")

    def _authorized(self, repo: Repo) -> bool:
        if not repo.private:
            return True
        return self.headers.get("Authorization") == f"Bearer {self.hub.token}"

    def _resolve(self) -> None:
        path = unquote(urlsplit(self.path).path)
        self.hub.requests.append((self.command, path))
        parts = path.strip("/").split("/")
        if len(parts) < 5 or parts[2] != "resolve":
            self._error(404, "RepoNotFound")
            return
        repo_id, rev, filename = f"{parts[0]}/{parts[1]}", parts[3], "/".join(parts[4:])
        repo = self.hub.repos.get(repo_id)
        if repo is None or not self._authorized(repo):
            self._error(401 if repo is None else 404, "RepoNotFound")
            return
        commit = repo.revisions.get(rev, rev if rev in repo.commits else None)
        if commit is None:
            self._error(404, "RevisionNotFound")
            return
        files = repo.commits[commit]
        if filename not in files:
            self._error(404, "EntryNotFound", commit)
            return
        data = files[filename]
        etag = hashlib.sha256(data).hexdigest()
        rng = self.headers.get("Range")
        start = int(rng[len("bytes="):].split("-")[0]) if rng and rng.startswith("bytes=") else 0
        body = data[start:]
        headers = {"X-Repo-Commit": commit, "ETag": f'"{etag}"', "Accept-Ranges": "bytes"}
        if start:
            headers["Content-Range"] = f"bytes {start}-{len(data) - 1}/{len(data)}"
        self._send(206 if start else 200, body, headers)

    def do_HEAD(self) -> None:  # noqa: N802
        self._resolve()

    def do_GET(self) -> None:  # noqa: N802
        self._resolve()

    def _body(self) -> bytes:
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def do_POST(self) -> None:  # noqa: N802
        path = unquote(urlsplit(self.path).path)
        self.hub.requests.append(("POST", path))
        body = self._body()
        if path == "/api/validate-yaml":  # README metadata check before a commit
            self._send(200, json.dumps({"errors": [], "warnings": []}).encode(), content_type="application/json")
            return
        if path == "/api/repos/create":
            req = json.loads(body or b"{}")
            repo_id = f"{req['organization']}/{req['name']}" if req.get("organization") else req["name"]
            with self.hub._lock:
                existed = repo_id in self.hub.repos
                private = bool(req.get("private")) or req.get("visibility") == "private"
                repo = self.hub.repos.setdefault(repo_id, Repo(private=private))
                if not repo.revisions:
                    empty = hashlib.sha1(repo_id.encode()).hexdigest()
                    repo.commits[empty] = {}
                    repo.revisions["main"] = empty
            status = 409 if existed else 200
            self._send(status, json.dumps({"url": f"{self.hub.url}/{repo_id}", "name": repo_id,
                                           "error": "already exists" if existed else None}).encode(),
                       content_type="application/json")
            return
        parts = path.strip("/").split("/")
        # /api/models/{org}/{name}/preupload/{rev} and /api/models/{org}/{name}/commit/{rev}
        if len(parts) >= 6 and parts[0] == "api" and parts[1] == "models" and parts[4] in ("preupload", "commit"):
            repo_id, op, rev = f"{parts[2]}/{parts[3]}", parts[4], "/".join(parts[5:])
            if repo_id not in self.hub.repos:
                self._error(404, "RepoNotFound")
                return
            if op == "preupload":
                req = json.loads(body or b"{}")
                files = [{"path": f["path"], "uploadMode": "regular", "shouldIgnore": False, "oid": None}
                         for f in req.get("files", [])]
                self._send(200, json.dumps({"files": files}).encode(), content_type="application/json")
                return
            files: dict[str, bytes] = {}
            for line in body.decode().splitlines():
                if not line.strip():
                    continue
                item = json.loads(line)
                if item.get("key") == "file":
                    v = item["value"]
                    files[v["path"]] = base64.b64decode(v["content"]) if v.get("encoding") == "base64" \
                        else v["content"].encode()
                elif item.get("key") == "lfsFile":
                    self._error(400, "LfsNotSupportedHere")
                    return
            sha = self.hub.add_commit(repo_id, files, branch=rev)
            self._send(200, json.dumps({"commitUrl": f"{self.hub.url}/{repo_id}/commit/{sha}", "commitOid": sha,
                                        "success": True}).encode(), content_type="application/json")
            return
        self._error(404, "RepoNotFound")

    def do_PUT(self) -> None:  # noqa: N802
        self.hub.requests.append(("PUT", self.path))
        self._body()
        self._error(404, "RepoNotFound")


def wait_for(pred: Any, timeout: float = 10.0) -> bool:
    """Poll ``pred`` until true or ``timeout`` (used to wait for a subprocess to reach a state)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(0.02)
    return bool(pred())
