"""The Hugging Face Hub's address and the proxy to it, as the environment sets them: checked before a library
reads them (huggingface_hub parses HF_ENDPOINT when it is imported, and a dead proxy costs a stack of retries)."""

from __future__ import annotations

import os
import socket
from urllib.parse import urlsplit

from core.errors import HubError

DEFAULT_ENDPOINT = "https://huggingface.co"


def check_hub_endpoint() -> None:
    """HubError naming HF_ENDPOINT when it is set to something that is not a web address."""
    value = os.environ.get("HF_ENDPOINT")
    if value is None:
        return  # the libraries use the Hub itself
    try:  # used as it is: huggingface_hub puts paths after it, an empty one or spaces included
        parts = urlsplit(value)
        ok = parts.scheme in ("http", "https") and bool(parts.hostname) and not any(c.isspace() for c in value)
        ok = ok and (parts.port is None or parts.port > 0)  # a port that is not a number raises ValueError
    except ValueError:  # "http://[::1": a bracket never closed
        ok = False
    if not ok:
        raise HubError(f"HF_ENDPOINT is {value!r}, which is not a web address; set it to the Hub's "
                       f"({DEFAULT_ENDPOINT}) or a mirror's https:// address, or unset it")


def hub_host() -> str:
    """The host the Hub is reached at (HF_ENDPOINT's, checked, or huggingface.co)."""
    value = os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT
    try:
        return urlsplit(value).hostname or "huggingface.co"
    except ValueError:
        return "huggingface.co"


def check_hub_proxy(timeout: float = 3.0) -> None:
    """HubError naming the proxy when HTTPS to the Hub goes through one (HTTPS_PROXY, ALL_PROXY) that does not
    answer: the libraries would retry it for half a minute, then fail with a traceback."""
    import urllib.request

    host = hub_host()
    proxies = urllib.request.getproxies_environment()
    url = proxies.get("https") or proxies.get("all")
    if not url or urllib.request.proxy_bypass_environment(host, proxies):
        return
    names = [name for name in os.environ if name.lower() in ("https_proxy", "all_proxy") and os.environ[name] == url]
    variable = names[0] if names else "HTTPS_PROXY"
    try:
        parts = urlsplit(url if "://" in url else f"http://{url}")
        proxy_host, port = parts.hostname, parts.port
    except ValueError:
        proxy_host = port = None
    if not proxy_host:
        raise HubError(f"{variable} is {url!r}, which is not a proxy address; fix or unset it, then try again")
    port = port or {"https": 443, "socks5": 1080, "socks5h": 1080, "socks4": 1080}.get(parts.scheme, 80)
    shown = f"{parts.scheme}://{proxy_host}:{port}"  # never its user name and password
    try:
        socket.create_connection((proxy_host, port), timeout=timeout).close()
    except OSError as exc:
        reason = exc.strerror or str(exc) or "no answer"
        raise HubError(f"cannot reach the proxy {shown} that {variable} names ({reason}); nothing was sent: start "
                       f"the proxy, or fix or unset {variable}, then try again") from None
