"""Fetch one file over HTTP(S), verify it, and only then put it in place.

The bytes go to a temporary file in the destination folder (with a tqdm progress bar on
stderr); ``check`` verifies the finished temporary file; ``os.replace`` then renames it
to its real name in one atomic step. A failed, rejected or interrupted download removes
the temporary file, so a partial file never sits under the real name.
"""

import http.client
import os
import sys
import urllib.error
import urllib.request
import uuid

from tqdm import tqdm

from tinygen.errors import DataFormatError

TIMEOUT_S = 30
_CHUNK = 1 << 20


class DownloadError(OSError):
    """Every mirror failed to deliver a file (network errors; the message lists each one)."""


def _fetch(url, file):
    """Write the body of ``url`` into the open binary ``file``, showing progress."""
    with urllib.request.urlopen(url, timeout=TIMEOUT_S) as response:
        length = response.headers.get("Content-Length")
        total = int(length) if length and length.isdigit() else None
        received = 0
        with tqdm(total=total, unit="B", unit_scale=True, desc=os.path.basename(url), file=sys.stderr) as bar:
            while True:
                chunk = response.read(_CHUNK)
                if not chunk:
                    break
                file.write(chunk)
                received += len(chunk)
                bar.update(len(chunk))
    if total is not None and received != total:
        raise DownloadError(f"the connection closed after {received} of {total} bytes")


def download(urls, destination, check):
    """Download the first of ``urls`` that works to the path ``destination``, verified by ``check``.

    ``check(path)`` raises DataFormatError when the file at ``path`` has the wrong content;
    the next URL is then tried. Raises DownloadError when every URL failed to connect or
    send, DataFormatError when some URL sent wrong content; either way no file is left.
    """
    folder = os.path.dirname(os.path.abspath(destination))
    os.makedirs(folder, exist_ok=True)
    network_errors, content_errors = [], []
    for url in urls:
        tmp = os.path.join(folder, f".{os.path.basename(destination)}.{uuid.uuid4().hex[:8]}.part")
        try:
            with open(tmp, "xb") as file:
                _fetch(url, file)
            check(tmp)
            os.replace(tmp, destination)
            return destination
        except DataFormatError as err:
            content_errors.append(f"{url}: {err}")
        except (OSError, http.client.HTTPException) as err:  # URLError, timeouts, refused, short reads
            reason = err.reason if isinstance(err, urllib.error.URLError) else err
            network_errors.append(f"{url}: {type(err).__name__}: {reason}")
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)
    if content_errors:
        raise DataFormatError(
            f"downloading {os.path.basename(destination)} gave a file with the wrong content, which was "
            f"deleted: {'; '.join(content_errors + network_errors)}"
        )
    raise DownloadError(f"no mirror could send {os.path.basename(destination)}: {'; '.join(network_errors)}")
