"""Get a corpus source onto disk and say which files to read and how.

Four source types: `url` (resumable HTTP download that follows only http(s) redirects, sha256 or
length check, safe and size-capped archive extraction), `hf` (a Hugging Face dataset streamed
into zstd JSON lines), `local` (globs under the data root) and `package` (a data file shipped
inside an installed Python package). Downloads end with a `manifest.json` written last, so its
presence means the source is complete.

- `http_fetch`: one http(s) file onto disk: resume, retries, redirects, sha256 or length check;
- `archives`: zip and tar extraction, refusing unsafe members and capped in size and count;
- `hf`: a Hugging Face dataset split streamed into zstd JSON lines;
- `records`: the JSON records a download leaves beside its files (manifest, check record);
- `source_download`: a `url` or `hf` source fetched into its folder, its manifest written last;
- `sources`: a source's config entry checked, and the files it stands for (the corpus inputs).

The errors, shared by all of them, are defined here.
"""


class DownloadError(RuntimeError):
    """A source could not be fetched or unpacked."""


class ChecksumError(DownloadError):
    """A downloaded file's sha256 differs from the one the config pins."""


class SourceSpecError(ValueError):
    """A source's config entry is incomplete or contradictory."""
