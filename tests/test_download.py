"""Downloads against a local server on loopback, serving files made here."""

import hashlib
import http.server
import io
import threading
import zipfile

import pytest
import torch

from cinemagraph.download import ENV_MIRROR, Source, download, main
from cinemagraph.errors import UserError
from cinemagraph.models import create


@pytest.fixture()
def server():
    files = {}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            name = self.path.lstrip("/")
            if name not in files:
                self.send_error(404)
                return
            body, announced = files[name]
            self.send_response(200)
            self.send_header("Content-Length", str(announced))
            self.end_headers()
            self.wfile.write(body)  # fewer bytes than announced for a truncated file

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{httpd.server_address[1]}"

    def serve(name, body, announced=None):
        files[name] = (body, len(body) if announced is None else announced)
        return f"{base}/{name}"

    serve.base = base
    yield serve
    httpd.shutdown()
    httpd.server_close()


def decoder_file(drop=None):
    state = create("img_decoder").state_dict()
    if drop:
        state.pop(drop)
    buf = io.BytesIO()
    torch.save({"img_decoder": state, "feature_net": {}}, buf)
    return buf.getvalue()


def test_a_good_file_is_verified_by_hash_and_layout_and_renamed(server, tmp_path):
    body = decoder_file()
    digest = hashlib.sha256(body).hexdigest()
    name = f"decoder-{digest[:8]}.pth"  # torch.hub-style name: its hash prefix is checked too
    sources = {"decoder": Source(name, server(name, body), sha256=digest, models=("img_decoder",))}
    written = download(["decoder"], tmp_path, sources=sources, progress=False)
    assert written == [tmp_path / name] and (tmp_path / name).read_bytes() == body
    assert not list(tmp_path.glob("*.partial"))
    create("img_decoder", checkpoint=tmp_path / name)
    # Present files are kept unless asked.
    assert download(["decoder"], tmp_path, sources=sources, progress=False) == []


@pytest.mark.parametrize("case", ["truncated", "wrong hash", "wrong prefix", "wrong layout",
                                  "missing"])
def test_bad_downloads_leave_nothing_behind(server, tmp_path, case):
    body = decoder_file(drop="alpha" if case == "wrong layout" else None)
    name = "decoder-00000000.pth" if case == "wrong prefix" else "decoder.pth"
    url = server(name, body[:5000] if case == "truncated" else body,
                 announced=len(body) if case == "truncated" else None)
    if case == "missing":
        url = server.base + "/absent.pth"
    sha = "0" * 64 if case == "wrong hash" else None
    sources = {"decoder": Source(name, url, sha256=sha, models=("img_decoder",))}
    expected = {"truncated": "bytes", "wrong hash": "SHA-256", "wrong prefix": "does not start",
                "wrong layout": "missing key", "missing": "cannot download"}[case]
    with pytest.raises(UserError, match=expected):
        download(["decoder"], tmp_path, sources=sources, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_archive_members_are_extracted_and_checked(server, tmp_path):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("ckpts/model_150000.pth", decoder_file())
        z.writestr("ckpts/other.txt", "x")
    sources = {"bundle": Source("bundle.zip", server("bundle.zip", buf.getvalue()),
                                members={"model_150000.pth": ("img_decoder",)})}
    written = download(["bundle"], tmp_path, sources=sources, progress=False)
    assert written == [tmp_path / "model_150000.pth"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model_150000.pth"]


def test_command_uses_the_mirror_and_refuses_unknown_names(server, tmp_path, monkeypatch, capsys):
    server("depth-model.pth", b"fetched from the mirror, then refused: not a checkpoint")
    monkeypatch.setenv(ENV_MIRROR, server.base)
    assert main(["inpaint_depth_net", "--dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "depth-model.pth" in err and "cannot read checkpoint" in err
    assert list(tmp_path.iterdir()) == []
    assert main(["nothing", "--dir", str(tmp_path)]) == 2
    assert "unknown download" in capsys.readouterr().err
