"""Consoles in the browser: tickets, the Origin check, the VNC and serial proxies and their pages.

``tickets`` (the service: issue, redeem, heartbeat, close), ``rfb`` (the VNC handshake on both
sides of the proxy), ``origin`` (which pages may open a console socket), ``backends`` (reaching a
VM's VNC server or serial console), ``consumers`` (the websockets), ``api`` and ``views``.
"""
