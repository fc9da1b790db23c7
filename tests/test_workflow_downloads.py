"""Downloads through the real `snakemake` command, on the tiny config with its corpus as a `url`
source served from 127.0.0.1: a redirect off http(s), an archive past its size limit, and a
response with nothing to check it by. Each run targets the download (or the corpus) only."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import pytest
from local_http import http_server, tcp_listener
from tiny_workflow import prepare_workdir, snakemake, tiny_config

# Hostile downloads, like the damaged artifacts of test_faults: run by `make test-faults`.
pytestmark = [pytest.mark.workflow, pytest.mark.faults]

MANIFEST = "results/download/web/manifest.json"
LOG = "results/logs/download/web.log"
LINES = "".join(f"第{i}行的一些中文文本。\n" for i in range(40)).encode()


def url_workdir(workdir: Path, url: str, **settings: object) -> Path:
    """The tiny workflow in `workdir`, its corpus the single source `web` downloaded from `url`."""
    config = tiny_config(workdir / "data")
    config["sources"] = {"web": {"type": "url", "url": url, "format": "lines", **settings}}
    return prepare_workdir(workdir, config)


def test_redirect_to_ftp_fails_the_job_without_contacting_it(tmp_path: Path) -> None:
    with http_server() as server, tcp_listener() as ftp:
        target = f"ftp://127.0.0.1:{ftp.port}/corpus.txt"
        server.redirects["/corpus.txt"] = target
        workdir = url_workdir(tmp_path, f"{server.base}/corpus.txt")
        result = snakemake(workdir, "--cores", "1", MANIFEST, check=False)
    assert result.returncode != 0 and "Error in rule download" in result.stderr
    log = (workdir / LOG).read_text(encoding="utf-8")
    assert (
        f"DownloadError: {server.base}/corpus.txt: redirected to {target}, but only http:// and "
        f"https:// URLs can be downloaded (got ftp scheme; redirects: {server.base}/corpus.txt "
        f"-> {target})"
    ) in log
    assert ftp.connections == []
    assert server.requests == [("/corpus.txt", None)]
    assert not (workdir / MANIFEST).exists()


def test_archive_past_the_configured_limit_fails_the_job(tmp_path: Path) -> None:
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        for i in range(3):
            zf.writestr(f"part{i}.txt", LINES)
    with http_server() as server:
        server.files["/corpus.zip"] = archive.getvalue()
        workdir = url_workdir(tmp_path, f"{server.base}/corpus.zip", max_extract_bytes=2000)
        result = snakemake(workdir, "--cores", "1", MANIFEST, check=False)
    assert result.returncode != 0 and "Error in rule download" in result.stderr
    log = (workdir / LOG).read_text(encoding="utf-8")
    size = f"{3 * len(LINES) / 1024:.1f} KiB"
    assert (
        f"corpus.zip: members expand to {size}, over the limit of 2.0 KiB "
        "(sources.web.max_extract_bytes: 2000)"
    ) in log
    assert not (workdir / MANIFEST).exists()
    [extracted] = (workdir / "results/download/web").glob("*/extracted")
    assert list(extracted.iterdir()) == []
    # The settings refuse a limit that is no limit before any job starts.
    url_workdir(tmp_path, f"{server.base}/corpus.zip", max_extract_bytes=0)
    dry = snakemake(workdir, "--dry-run", MANIFEST, check=False)
    refused = "config sources.web.max_extract_bytes: input should be greater than or equal to 1"
    assert dry.returncode != 0 and refused in dry.stdout + dry.stderr


def test_response_without_length_or_sha256_is_recorded_unverified(tmp_path: Path) -> None:
    with http_server() as server:
        server.files["/corpus.txt"] = LINES
        server.no_length.add("/corpus.txt")
        workdir = url_workdir(tmp_path, f"{server.base}/corpus.txt")
        snakemake(workdir, "--cores", "1", "results/corpus/stats.json")
    manifest = json.loads((workdir / MANIFEST).read_text(encoding="utf-8"))
    assert manifest["download"]["verified"] is False
    why = manifest["download"]["check"]
    assert why.startswith("no sha256 is configured and the server sent no Content-Length")
    log = (workdir / LOG).read_text(encoding="utf-8")
    assert f"WARNING wwmdistill.download: {server.base}/corpus.txt: " in log
    assert f"is unverified: {why}" in log
    stats = json.loads((workdir / "results/corpus/stats.json").read_text(encoding="utf-8"))
    assert stats["documents"] == 40  # the corpus is still built from the file
