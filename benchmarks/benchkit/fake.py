"""The fake provider: nginx answering static OpenAI JSON and a static 20-chunk SSE body.

nginx cannot look at a request body, so streaming is told apart by path: ``/v1/chat/completions``
answers the JSON completion, ``/sse/v1/chat/completions`` the SSE body. The gateway reaches the
second one through a custom OpenAI-compatible provider whose base URL ends in ``/sse/v1``.

nginx comes from Debian's packages (``apt-get install -y nginx``, done on demand when running as
root) and runs with a generated config in a temporary directory, never the system one. Without
nginx, ``static_server.py`` (raw asyncio) stands in and the report says so.
"""

from __future__ import annotations

import grp
import os
import pwd
import sys
from dataclasses import dataclass, field
from pathlib import Path

from benchkit import payloads
from benchkit.procs import Proc, ensure_debian_tool, free_port, progress

NGINX_CONF = """\
user {user} {group};
worker_processes 1;
daemon off;
pid {dir}/nginx.pid;
error_log {dir}/nginx-error.log warn;
events {{ worker_connections 8192; multi_accept on; }}
http {{
  access_log off;
  client_body_temp_path {dir}/body;
  proxy_temp_path {dir}/proxy;
  fastcgi_temp_path {dir}/fastcgi;
  uwsgi_temp_path {dir}/uwsgi;
  scgi_temp_path {dir}/scgi;
  client_body_buffer_size 64k;
  keepalive_requests 100000000;
  keepalive_timeout 600s;
  server_tokens off;
  etag off;
  open_file_cache max=16;
  root {dir}/www;
  server {{
    listen 127.0.0.1:{port} backlog=4096;
    # The static handler refuses POST with 405; error_page turns that into the file, as 200.
    location = /v1/chat/completions {{
      default_type application/json;
      error_page 405 =200 $uri;
    }}
    location = /sse/v1/chat/completions {{
      default_type text/event-stream;
      error_page 405 =200 $uri;
    }}
  }}
}}
"""


@dataclass
class FakeProvider:
    workdir: Path
    cpus: str | None = "0"
    port: int = field(default_factory=free_port)
    kind: str = "nginx"
    proc: Proc | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def openai_base_url(self) -> str:
        """For non-streaming calls (``OPENAI_BASE_URL``)."""
        return f"{self.base}/v1"

    @property
    def sse_base_url(self) -> str:
        """For streaming calls (the custom provider's base URL)."""
        return f"{self.base}/sse/v1"

    def start(self, *, allow_install: bool = True, force_python: bool = False) -> FakeProvider:
        self.workdir.mkdir(parents=True, exist_ok=True)
        chat, sse = payloads.chat_completion(), payloads.sse_stream()
        nginx = (
            None if force_python else ensure_debian_tool("nginx", "nginx", install=allow_install)
        )
        if nginx:
            for path, body in (("v1", chat), ("sse/v1", sse)):
                target = self.workdir / "www" / path / "chat" / "completions"
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(body)
            conf = self.workdir / "nginx.conf"
            # Workers run as the current user: a default "nobody" could not read a private tmp.
            user = pwd.getpwuid(os.geteuid()).pw_name
            group = grp.getgrgid(os.getegid()).gr_name
            conf.write_text(
                NGINX_CONF.format(dir=self.workdir, port=self.port, user=user, group=group)
            )
            cmd = [
                nginx,
                "-c",
                str(conf),
                "-p",
                str(self.workdir),
                "-e",
                str(self.workdir / "nginx-error.log"),
            ]
            self.kind = "nginx"
        else:
            why = "forced" if force_python else "nginx unavailable"
            progress(f"{why}: the fake provider is the raw-asyncio static server")
            (self.workdir / "chat.json").write_bytes(chat)
            (self.workdir / "stream.sse").write_bytes(sse)
            cmd = [
                sys.executable,
                str(Path(__file__).with_name("static_server.py")),
                str(self.port),
                str(self.workdir / "chat.json"),
                str(self.workdir / "stream.sse"),
            ]
            self.kind = "asyncio static server"
        self.proc = Proc("fake-provider", cmd, self.workdir / "fake.log", cpus=self.cpus).start()
        self.proc.wait_port(self.port)
        return self

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.stop()
