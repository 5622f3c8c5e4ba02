"""Files behind STAC asset hrefs: local paths read in place, remote files downloaded to a cache.

:func:`fetch` turns an href into a local path. A local path (or ``file://`` URL) is returned as
it is. An ``http(s)`` URL is streamed into a cache folder under its own file name: to a
temporary name first, renamed once every byte the server announced (``Content-Length``) has
arrived, so a file under its final name in the cache is always complete, and a rerun reuses it
without asking the server again (an interrupted run resumes at the first file it lacks).

NASA Earthdata (EMIT at ``data.lpdaac.earthdatacloud.nasa.gov``) needs a login, given either way:

- ``EARTHDATA_TOKEN``: a user token (https://urs.earthdata.nasa.gov, "Generate Token"), sent as
  ``Authorization: Bearer …`` to NASA Earthdata hosts over https only, the asset's own host
  and redirects alike (never to other hosts, such as the signed S3 URL the download ends at,
  or a catalog's assets elsewhere);
- ``~/.netrc`` (or the file ``$NETRC`` names) with
  ``machine urs.earthdata.nasa.gov login USER password PASSWORD``: the credentials are sent
  when the download redirects to the Earthdata login, whose cookies then carry the session.
  (``requests`` itself drops authentication on a redirect to another host; the session here
  keeps it for the login host, see :class:`EarthdataSession`.)

A 401 or 403 answer becomes one :class:`EarthdataAuthError` line naming both ways.
"""

from __future__ import annotations

import logging
import netrc
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import requests

from cropglobe._fs import atomic_path, safe_name
from cropglobe.errors import CropGlobeError, MissingFileError

__all__ = [
    "EARTHDATA_DOMAINS",
    "URS_HOST",
    "DownloadError",
    "EarthdataAuthError",
    "EarthdataSession",
    "cache_path",
    "earthdata_session",
    "fetch",
    "is_remote",
]

log = logging.getLogger(__name__)

#: the Earthdata login host (OAuth and netrc credentials)
URS_HOST = "urs.earthdata.nasa.gov"

#: host names ending so are NASA Earthdata hosts: the token travels to them across redirects
EARTHDATA_DOMAINS: tuple[str, ...] = ("earthdata.nasa.gov", "earthdatacloud.nasa.gov")

#: bytes per read while streaming a download
CHUNK_BYTES = 1 << 20

_AUTH_HINT = (
    "set EARTHDATA_TOKEN to an Earthdata user token (https://urs.earthdata.nasa.gov, "
    "'Generate Token'), or put 'machine urs.earthdata.nasa.gov login USER password PASSWORD' "
    "in ~/.netrc"
)


class DownloadError(CropGlobeError):
    """A remote file cannot be downloaded (network error, HTTP error, a cut-short transfer)."""


class EarthdataAuthError(DownloadError):
    """The server refused the request for want of a (valid) Earthdata login."""


def is_remote(href: str) -> bool:
    """True for ``http://`` and ``https://`` hrefs."""
    return href.lower().startswith(("http://", "https://"))


def _host(url: str) -> str:
    return (urlparse(url).hostname or "").lower()


def _is_earthdata(host: str) -> bool:
    return host == URS_HOST or any(host == d or host.endswith(f".{d}") for d in EARTHDATA_DOMAINS)


def _secure(url: str) -> bool:
    """https, or a loopback address (nothing crosses the network)."""
    return urlparse(url).scheme == "https" or _host(url) in ("localhost", "127.0.0.1", "::1")


def _netrc_login(host: str) -> tuple[str, str] | None:
    """``(login, password)`` for ``host`` from ``$NETRC`` or ``~/.netrc``; None when absent."""
    where = os.environ.get("NETRC")
    path = Path(where).expanduser() if where else Path.home() / ".netrc"
    if not path.is_file():
        return None
    try:
        entry = netrc.netrc(os.fspath(path)).authenticators(host)
    except (netrc.NetrcParseError, OSError) as exc:
        log.warning("%s: cannot be read (%s); no Earthdata credentials taken from it", path, exc)
        return None
    if not entry or not entry[0] or entry[2] is None:
        return None
    return entry[0], entry[2]


class EarthdataSession(requests.Session):
    """A ``requests.Session`` whose redirects keep the Earthdata login.

    ``Authorization`` is dropped on a redirect to another host, as requests does (so the signed
    S3 URL a download ends at never sees it), except over https to NASA Earthdata hosts: the
    Earthdata login host (``urs.earthdata.nasa.gov``) gets the netrc credentials, the other
    Earthdata hosts the Bearer token. Build one with :func:`earthdata_session`.

    Args:
        token: an Earthdata user token, or None.
        login: ``(user, password)`` for the Earthdata login, or None.
    """

    def __init__(self, token: str | None = None, login: tuple[str, str] | None = None) -> None:
        super().__init__()
        self.token = token
        self.login = login
        self.headers["User-Agent"] = "cropglobe"

    def rebuild_auth(self, prepared_request: Any, response: Any) -> None:
        """Authentication of a redirected request (see the class docstring)."""
        headers = prepared_request.headers
        old, new = response.request.url, prepared_request.url
        if "Authorization" in headers and self.should_strip_auth(old, new):
            del headers["Authorization"]
        host = _host(new)
        if not _secure(new):
            return  # no credentials in clear over the network
        if host == URS_HOST and self.login is not None:
            prepared_request.prepare_auth(self.login)
        elif self.token and _is_earthdata(host):
            headers["Authorization"] = f"Bearer {self.token}"


def earthdata_session(
    token: str | None = None, *, login: tuple[str, str] | None = None
) -> EarthdataSession:
    """A session that authenticates to NASA Earthdata across redirects.

    Args:
        token: an Earthdata user token; default the ``EARTHDATA_TOKEN`` environment variable.
        login: ``(user, password)`` for the Earthdata login; default the ``~/.netrc`` (or
            ``$NETRC``) entry of ``urs.earthdata.nasa.gov``.

    Returns:
        An :class:`EarthdataSession` (close it when done, or use it in a ``with`` block).
    """
    tok = token if token is not None else (os.environ.get("EARTHDATA_TOKEN") or "").strip()
    creds = login if login is not None else _netrc_login(URS_HOST)
    return EarthdataSession(tok or None, creds)


def cache_path(href: str, cache: str | os.PathLike[str]) -> Path:
    """Where :func:`fetch` keeps the download of ``href``: its file name in ``cache``."""
    name = unquote(Path(urlparse(href).path).name) or "download"
    return Path(cache) / safe_name(name)


def _local(href: str) -> Path:
    if href.lower().startswith("file://"):
        return Path(unquote(urlparse(href).path))
    return Path(href)


def _reason(exc: BaseException) -> str:
    from cropglobe.io.stac import _reason as stac_reason

    return stac_reason(exc)


def fetch(
    href: str,
    cache: str | os.PathLike[str],
    *,
    session: Any = None,
    progress: Callable[[int, int], Any] | None = None,
    timeout: float = 60.0,
) -> Path:
    """A local path holding the file behind ``href``.

    Args:
        href: a local path, a ``file://`` URL, or an ``http(s)`` URL.
        cache: folder for downloads (created when needed); a file already there under the
            URL's file name is reused without a request.
        session: a ``requests.Session`` for downloads (default: a new
            :func:`earthdata_session`, closed afterwards).
        progress: called while downloading with ``(bytes received, bytes in all)`` (0 in all
            when the server does not say).
        timeout: seconds to wait for the server to connect or send the next bytes.

    Returns:
        The local file.

    Raises:
        MissingFileError: a local href that does not exist.
        EarthdataAuthError: HTTP 401/403, or the download ended on the Earthdata login page.
        DownloadError: another HTTP error, a network error, or fewer bytes than announced.
    """
    if not is_remote(href):
        path = _local(href)
        if not path.is_file():
            raise MissingFileError(
                f"{path}: no such file (an asset of the STAC catalog); check the catalog's hrefs"
            )
        return path
    target = cache_path(href, cache)
    if target.is_file() and target.stat().st_size > 0:
        log.info("%s: in the cache already (%s)", target.name, target.parent)
        return target
    own = session is None
    sess = earthdata_session() if own else session
    token = getattr(sess, "token", None)
    to_nasa = _is_earthdata(_host(href)) and _secure(href)  # the token goes to NASA hosts only
    headers = {"Authorization": f"Bearer {token}"} if token and to_nasa else {}
    try:
        with sess.get(href, stream=True, timeout=timeout, headers=headers) as resp:
            _check(resp, href)
            announced = resp.headers.get("Content-Length")
            total = int(announced) if announced and announced.isdigit() else 0
            encoded = resp.headers.get("Content-Encoding", "identity").lower() != "identity"
            log.info("downloading %s (%s bytes) to %s", href, total or "?", target.parent)
            with atomic_path(target) as tmp, open(tmp, "wb") as fh:
                done = 0
                for chunk in resp.iter_content(CHUNK_BYTES):
                    fh.write(chunk)
                    done += len(chunk)
                    if progress is not None:
                        progress(done, total)
                if total and not encoded and done != total:
                    raise DownloadError(
                        f"download of {href} was cut short ({done:,} of {total:,} bytes); run "
                        "the command again to retry it"
                    )
    except CropGlobeError:
        raise
    except requests.RequestException as exc:
        raise DownloadError(
            f"cannot download {href} ({_reason(exc)}); check the network connection and run "
            "the command again (files already downloaded are reused)"
        ) from None
    finally:
        if own:
            sess.close()
    return target


def _check(resp: Any, href: str) -> None:
    """Raise for an answer that is no file: 401/403 (login), other HTTP errors, the login
    page."""
    code = int(resp.status_code)
    host = _host(resp.url or href)
    if code in (401, 403):
        raise EarthdataAuthError(
            f"HTTP {code} from {host} for {Path(urlparse(href).path).name}: the server wants an "
            f"Earthdata login; {_AUTH_HINT}"
        )
    if code >= 400:
        raise DownloadError(
            f"HTTP {code} ({resp.reason or 'error'}) from {host} for {href}; check that the "
            "URL is still served, or try again later"
        )
    if host == URS_HOST and "html" in resp.headers.get("Content-Type", ""):
        raise EarthdataAuthError(
            f"the download of {Path(urlparse(href).path).name} ended on the Earthdata login "
            f"page (no login was accepted); {_AUTH_HINT}"
        )
