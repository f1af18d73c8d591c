"""The feed dialects the catalog reads, one module each, and how a feed's bytes are told apart.

``catalog.feeds.parse_feed`` is the entry point. ``detect`` decides the dialect from the bytes:

- ``ours``: RSS 2.0 with our namespace (``catalog.vmcast.NAMESPACE``): everything declared, sha256 too.
- ``archipel``: Archipel's VMcasts: RSS with an un-namespaced ``<uuid>`` and ``.xvm2`` packages.
- ``plain``: Enomaly-style VMcasts: RSS items with nothing but an ``<enclosure>``.
- ``simplestreams``: the JSON index and products files of Ubuntu's cloud images and LXD/Incus.

``common`` holds what all of them return (``ParsedFeed`` of ``ParsedItem``) and the checks every
value from a feed passes, so that every dialect is all or nothing in the same way.
"""
