"""Consoles in the browser: tickets, the VNC and serial proxies and their pages.

``tickets`` (the service: issue, redeem, heartbeat, close), ``rfb`` (the VNC handshake on both
sides of the proxy), ``backends`` (reaching a VM's VNC server or serial console), ``consumers`` (the
websockets, behind the Origin check every socket passes: ``portal.socket_origin``), ``api`` and
``views``.
"""
